// A message's text as DOM nodes: text nodes, with http(s) addresses made links and the
// reader's own `@name` marked. Nothing else becomes markup; no previews are fetched.
import { findName } from './mentions.js';

// An address starts at http:// or https:// and runs to the next space; closing
// punctuation at its end is taken as the sentence's, not the address's.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/giu;
const TRAILING = /[.,;:!?'")\]}]+$/u;

/**
 * Appends `text` to `parent`. With `rich` (a page that speaks CHAT_2 wrote it), http and
 * https addresses become links that open in a new tab without telling the site where they
 * came from, and `@me` (the reader's name) is marked.
 */
export function appendText(doc, parent, text, { rich = true, me = '' } = {}) {
  if (!rich) {
    parent.append(doc.createTextNode(text));
    return;
  }
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const href = match[0].replace(TRAILING, '');
    const url = safeUrl(href);
    if (!url) continue;
    appendMentions(doc, parent, text.slice(last, match.index), me);
    const a = doc.createElement('a');
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.textContent = href;
    parent.append(a);
    last = match.index + href.length;
  }
  appendMentions(doc, parent, text.slice(last), me);
}

/** The address if it parses as http or https, else null. */
function safeUrl(href) {
  try {
    const url = new URL(href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function appendMentions(doc, parent, text, me) {
  let last = 0;
  for (const { start, end } of findName(text, me)) {
    parent.append(doc.createTextNode(text.slice(last, start)));
    const mark = doc.createElement('mark');
    mark.className = 'mention';
    mark.textContent = text.slice(start, end);
    parent.append(mark);
    last = end;
  }
  if (last < text.length) parent.append(doc.createTextNode(text.slice(last)));
}
