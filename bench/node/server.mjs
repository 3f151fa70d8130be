// The benchmark baseline: the room protocol of docs/PROTOCOL.md on Node.js socket.io 4.x, as the
// reference app speaks it (ids announced and addressed are socket ids; relays go to any
// socket). Quiet on purpose: no per-message logging. PORT and HOST from the environment.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Server } from 'socket.io';

// 10 characters of the URL-safe alphabet, like nanoid's default shape.
const ALPHABET = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict';
function roomId() {
  const bytes = randomBytes(10);
  let id = '';
  for (const b of bytes) id += ALPHABET[b & 63];
  return id;
}

const rooms = new Set();
const http = createServer();
const io = new Server(http, { cors: { origin: '*' } });

io.on('connection', (socket) => {
  const createRoom = () => {
    let id = roomId();
    while (rooms.has(id)) id = roomId();
    rooms.add(id);
    socket.join(id);
    socket.emit('room-created', id);
  };

  socket.on('create-room', createRoom);

  socket.on('join-room', (id) => {
    if (typeof id !== 'string' || !io.sockets.adapter.rooms.has(id)) return createRoom();
    socket.join(id);
    socket.to(id).emit('new-user-joined', socket.id);
  });

  for (const event of ['rtc-offer', 'rtc-answer', 'ice-candidate']) {
    socket.on(event, (peerId, payload) => {
      if (typeof peerId === 'string') io.to(peerId).emit(event, socket.id, payload);
    });
  }

  socket.on('disconnecting', () => {
    for (const id of socket.rooms) {
      if (id !== socket.id) socket.to(id).emit('user-disconnected', socket.id);
    }
  });
});

io.of('/').adapter.on('delete-room', (id) => rooms.delete(id));

const port = Number(process.env.PORT ?? 3001);
http.listen(port, process.env.HOST ?? '127.0.0.1', () => {
  console.log(`listening on ${http.address().address}:${http.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
