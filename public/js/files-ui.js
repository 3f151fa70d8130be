// The page's side of file transfers: picking, dropping and pasting files, a card per
// transfer with its progress and buttons, and a "send file" button per member.
import { Files, MAX_FILES_AT_ONCE } from './files.js';
import { ChatEvent, FilesEvent } from './events.js';
import { MAX_FILE_BYTES, TransferState, formatBytes } from './transfer.js';

const IMAGE_PREVIEW = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;

/**
 * Adds file transfers to the page of `app` (main.js): `nameOf(peerId)` is how the page
 * names a member. Returns the Files instance.
 */
export function installFiles(app, nameOf) {
  const { ui, peers, chat } = app;
  const files = new Files(peers, chat);
  const list = document.getElementById('transfers');
  const input = document.getElementById('file-input');
  const hint = document.getElementById('files-hint');
  hint.textContent = `Drop or paste files here too: up to ${MAX_FILES_AT_ONCE} at once, ${formatBytes(MAX_FILE_BYTES)} each. They go straight to the others' browsers.`;
  let target = null; // a member's peer id, when its "send file" button opened the picker

  const offer = (picked, peerId) => {
    if (!picked.length) return;
    const { refused } = files.offer(picked, peerId);
    for (const reason of refused) ui.log.addSystem(reason, { problem: true });
  };
  document.getElementById('attach').addEventListener('click', () => {
    target = null;
    input.click();
  });
  input.addEventListener('change', () => {
    offer([...input.files], target);
    input.value = '';
    target = null;
  });
  input.addEventListener('cancel', () => { target = null; });
  document.addEventListener('dragover', (e) => {
    if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
  });
  document.addEventListener('drop', (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    offer([...e.dataTransfer.files], null);
  });
  document.addEventListener('paste', (e) => {
    if (!e.clipboardData?.files.length) return;
    e.preventDefault();
    offer([...e.clipboardData.files], null);
  });

  const cards = new Map(); // by transfer id
  const render = (t) => {
    let card = cards.get(t.id);
    if (!card) {
      card = newCard(t, files, nameOf, () => {
        files.dismiss(t.id);
        cards.get(t.id)?.li.remove();
        cards.delete(t.id);
        list.hidden = cards.size === 0;
      });
      card.who = nameOf(t.peerId);
      cards.set(t.id, card);
      list.append(card.li);
      list.hidden = false;
      if (t.direction === 'in' && t.state === TransferState.OFFERED) {
        ui.log.addSystem(`${nameOf(t.peerId)} offers you a file: ${t.name} (${formatBytes(t.size)}). Accept or decline it below the messages.`);
      }
    }
    // Once a member has left, the page no longer knows its name: keep the last one.
    if (chat.member(t.peerId)) card.who = nameOf(t.peerId);
    update(card, t);
  };
  files.addEventListener(FilesEvent.TRANSFER, (e) => render(e.detail.transfer));
  files.addEventListener(FilesEvent.PROGRESS, (e) => render(e.detail.transfer));

  // A "send file" button on each member whose page takes files.
  const addSendButton = (peerId) => {
    const li = ui.members.element(peerId);
    if (!li || li.querySelector('.send-file')) return;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'send-file secondary';
    button.textContent = 'send file';
    button.addEventListener('click', () => {
      target = peerId;
      input.click();
    });
    li.append(button);
  };
  files.addEventListener(FilesEvent.CAPABLE, (e) => addSendButton(e.detail.peerId));
  chat.addEventListener(ChatEvent.REJOINED, (e) => files.canReceive(e.detail.peerId) && addSendButton(e.detail.peerId));
  return files;
}

function newCard(t, files, nameOf, dismiss) {
  const el = (tag, className) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  };
  const li = el('li', 'transfer');
  li.dataset.transferId = t.id;
  li.dataset.direction = t.direction;
  li.dataset.peerId = t.peerId;
  const head = el('p', 'transfer-head');
  const name = el('span', 'transfer-name');
  name.textContent = t.name;
  const meta = el('span', 'transfer-meta');
  const who = nameOf(t.peerId);
  meta.textContent = [formatBytes(t.size), t.mime || 'unknown type', t.direction === 'out' ? `to ${who}` : `from ${who}`].join(' · ');
  head.append(name, meta);
  const progress = el('progress', 'transfer-progress');
  progress.max = Math.max(t.size, 1);
  progress.value = 0;
  progress.setAttribute('aria-label', `Progress of ${t.name}`);
  const status = el('p', 'transfer-status');
  const actions = el('p', 'transfer-actions');
  const button = (text, onClick, className = '') => {
    const b = el('button', className);
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-label', `${text} ${t.name}`);
    b.addEventListener('click', onClick);
    return b;
  };
  const accept = button('Accept', () => files.accept(t.id));
  const decline = button('Decline', () => files.decline(t.id), 'secondary');
  const cancel = button('Cancel', () => files.cancel(t.id), 'secondary');
  const remove = button('Remove', dismiss, 'secondary');
  const save = el('a', 'transfer-save');
  save.textContent = 'Save';
  actions.append(accept, decline, cancel, save, remove);
  li.append(head, progress, status, actions);
  return { li, progress, status, accept, decline, cancel, remove, save, preview: null };
}

function update(card, t) {
  const { who } = card;
  const out = t.direction === 'out';
  card.li.dataset.state = t.state;
  card.progress.value = t.state === TransferState.DONE ? card.progress.max : t.bytes;
  card.li.dataset.percent = String(t.size ? Math.floor((100 * t.bytes) / t.size) : (t.state === TransferState.DONE ? 100 : 0));
  card.status.textContent = statusText(t, who, out);
  const offered = t.state === TransferState.OFFERED;
  card.accept.hidden = !(offered && !out);
  card.decline.hidden = !(offered && !out);
  card.cancel.hidden = t.finished || (offered && !out);
  card.remove.hidden = !t.finished;
  card.save.hidden = !t.url;
  if (t.url && !card.save.href) {
    card.save.href = t.url;
    card.save.download = t.name;
    card.li.dataset.sha256 = t.sha256;
    if (IMAGE_PREVIEW.test(t.mime)) {
      const img = document.createElement('img');
      img.className = 'transfer-preview';
      img.alt = `Preview of ${t.name}`;
      img.src = t.url;
      card.li.append(img);
    }
  }
}

function statusText(t, who, out) {
  switch (t.state) {
    case TransferState.OFFERED:
      return out ? `Waiting for ${who} to accept…` : `${who} offers you this file.`;
    case TransferState.ACTIVE: {
      const seconds = (performance.now() - t.startedAt) / 1000;
      const rate = seconds > 0 ? t.bytes / seconds : 0;
      const left = rate > 0 ? Math.ceil((t.size - t.bytes) / rate) : null;
      return `${formatBytes(t.bytes)} of ${formatBytes(t.size)} · ${formatBytes(Math.round(rate))}/s`
        + (left === null ? '' : ` · ${formatDuration(left)} left`);
    }
    case TransferState.VERIFYING:
      return `Sent; ${who} is checking it…`;
    case TransferState.DONE:
      return out ? `Delivered to ${who}; its SHA-256 matched.` : 'Received; its SHA-256 matched.';
    case TransferState.DECLINED:
      return out ? `${who} declined it.` : `Declined${t.reason === 'you declined' ? '' : ` (${t.reason})`}.`;
    default: {
      const reason = { left: `${who} left`, closed: `the connection to ${who} closed` }[t.reason] ?? t.reason;
      return `Stopped: ${reason}.`;
    }
  }
}

function formatDuration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${seconds % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
