// Healing: a connection whose network path breaks while both of us keep our peer ids is
// restarted in place (an ICE restart on the same RTCPeerConnection, so its data channel
// stays the same object), tried again while it does not connect, and given up at last.
import { PeerState, isResent } from './peer.js';

// How long a connection may stay `disconnected` before we restart ICE: it often recovers
// by itself within a second or two (a lost burst of packets).
const DISCONNECTED_GRACE_MS = 3_000;
// A restart not connected by then is tried again, up to MAX_RESTARTS times in a row.
const RESTART_TIMEOUT_MS = 5_000;
const MAX_RESTARTS = 6;

/**
 * Watches the connections and restarts ICE when one breaks. Both sides may restart at
 * once; "perfect negotiation" settles that glare: one side is polite (it drops its own
 * offer for the other's), the other ignores an offer that collides with its own. Which is
 * which the caller decides from what both sides know (members.js compares the client ids of
 * the two pages, which both have from the hellos).
 *
 * `roster` is Peers' side: isCurrent(peer), setState(peer, state), fail(peer), and
 * iceServers() (those of now).
 */
export class Healing {
  #signaling;
  #roster;
  // A field rather than the constant, so a browser test can keep one side from restarting
  // by itself while it watches the other.
  disconnectedGraceMs = DISCONNECTED_GRACE_MS;

  constructor(signaling, roster) {
    this.#signaling = signaling;
    this.#roster = roster;
  }

  /** Looks at `peers` now (the network or the page came back): those that are not
   * connected are restarted at once rather than after their timers. */
  check(peers) {
    for (const peer of peers) {
      const s = peer.pc.connectionState;
      if (peer.opened && (s === 'disconnected' || s === 'failed')) this.restart(peer);
    }
  }

  /** Restarts ICE towards `peer` if its page takes it and our signaling can carry it;
   * returns whether a restart was started. */
  restart(peer) {
    if (!this.#canRestart(peer)) return false;
    clearTimeout(peer.restartTimer);
    if (peer.restarts >= MAX_RESTARTS) {
      this.#roster.fail(peer);
      return false;
    }
    peer.restarts += 1;
    this.#roster.setState(peer, PeerState.RECONNECTING);
    this.#retryLater(peer);
    peer.serially(async () => {
      const { pc } = peer;
      // Our previous attempt went unanswered: take it back and make a new one.
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      if (pc.signalingState !== 'stable') return;
      peer.useIceServers(this.#roster.iceServers());
      await peer.describe(await pc.createOffer({ iceRestart: true }));
    });
    return true;
  }

  /** An ICE restart offer on a connection we have, perfect-negotiation style. Steps run
   * one at a time (Peer.serially), so at the time this one runs an offer of ours is either
   * out (`have-local-offer`) or not started. */
  onRestartOffer(peer, offer) {
    peer.serially(async () => {
      const { pc } = peer;
      // Not a restart: the offer we answered, sent again because our answer was late or
      // lost. The same answer again is all it needs.
      if (isResent(peer, offer)) {
        if (pc.signalingState === 'stable') peer.resendDescription();
        return;
      }
      const collision = pc.signalingState !== 'stable';
      peer.ignoredOffer = collision && !peer.polite;
      if (peer.ignoredOffer) return; // ours wins: they roll theirs back and answer ours
      if (peer.state === PeerState.OPEN || peer.state === PeerState.INTERRUPTED) {
        this.#roster.setState(peer, PeerState.RECONNECTING);
        this.#retryLater(peer);
      }
      peer.useIceServers(this.#roster.iceServers());
      // Our own offer, if any, is rolled back by the remote one (implicit rollback).
      await pc.setRemoteDescription(offer);
      await peer.describe(await pc.createAnswer());
      // A restart over a path that still works never leaves `connected`.
      if (pc.connectionState === 'connected') this.healed(peer);
    });
  }

  /** The RTCPeerConnection's state of `peer` changed. */
  onConnectionState(peer) {
    if (!this.#roster.isCurrent(peer)) return;
    const s = peer.pc.connectionState;
    const broken = peer.state === PeerState.OPEN || peer.state === PeerState.INTERRUPTED
      || peer.state === PeerState.RECONNECTING;
    if (s === 'failed') {
      // While a restart is under way its own timer decides when to try again.
      if (peer.state === PeerState.RECONNECTING) return;
      if (!(broken && this.restart(peer))) this.#roster.fail(peer);
    } else if (s === 'disconnected' && peer.state === PeerState.OPEN) {
      this.#roster.setState(peer, PeerState.INTERRUPTED);
      clearTimeout(peer.restartTimer);
      peer.restartTimer = setTimeout(() => {
        if (this.#roster.isCurrent(peer) && peer.pc.connectionState === 'disconnected') this.restart(peer);
      }, this.disconnectedGraceMs);
    } else if (s === 'connected' && broken) {
      this.healed(peer);
    }
  }

  /** The connection works again after an interruption or a restart. */
  healed(peer) {
    if (peer.state !== PeerState.INTERRUPTED && peer.state !== PeerState.RECONNECTING) return;
    clearTimeout(peer.restartTimer);
    peer.restarts = 0;
    this.#roster.setState(peer, PeerState.OPEN);
  }

  /** Not connected within RESTART_TIMEOUT_MS: we try (again) ourselves, since the network
   * may have been down all along, or the side that restarted may have given up. */
  #retryLater(peer) {
    clearTimeout(peer.restartTimer);
    peer.restartTimer = setTimeout(() => {
      if (!this.#roster.isCurrent(peer)) return;
      if (peer.pc.connectionState === 'connected') this.healed(peer);
      else if (!this.restart(peer) && peer.pc.connectionState === 'failed') this.#roster.fail(peer);
    }, RESTART_TIMEOUT_MS);
  }

  #canRestart(peer) {
    return this.#roster.isCurrent(peer) && peer.restartable && peer.opened && !peer.unreachable
      && peer.channel?.readyState === 'open' && peer.pc.signalingState !== 'closed'
      // Under a new peer id of ours (a new signaling connection) the others offer us new
      // connections anyway.
      && this.#signaling.connected && this.#signaling.id === peer.socketId;
  }
}
