// Starts the page: makes its parts (app.js), lets each module hook itself in, and enters
// the room the address names (or a new one).
import { createApp, nameOf } from './app.js';
import { enterRoom, installConnection } from './connection.js';
import { installConversation } from './conversation.js';
import { installFiles } from './files-ui.js';
import { registerServiceWorker } from './offline.js';
import { installPresence } from './presence.js';
import { roomIdFromUrl } from './room.js';
import { installSafety } from './safety.js';
import { installSeal } from './seal.js';
import { exposeTestHook } from './test-hook.js';

async function main() {
  const app = createApp();
  const requested = roomIdFromUrl();
  const name = (peerId) => nameOf(app, peerId);
  installConnection(app, requested);
  installPresence(app);
  installConversation(app);
  registerServiceWorker();
  // Private rooms, safety codes and files.
  installSeal(app);
  installSafety(app, name);
  installFiles(app, name);
  exposeTestHook(app);
  await enterRoom(app, requested);
}

main();
