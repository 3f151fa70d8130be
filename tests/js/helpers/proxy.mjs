// A round-robin TCP proxy on loopback, in front of several nodes, as a platform's load
// balancer would be: each new connection goes to the next node, skipping nodes that refuse.
import { connect, createServer } from 'node:net';

/**
 * Starts the proxy in front of `ports` (a list the caller may change at any time).
 * Returns { url, port, close() }.
 */
export async function startProxy(ports) {
  let next = 0;
  const open = new Set();
  let trap = null;
  const server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    let tries = 0;
    const tryNext = () => {
      if (tries >= ports.length) {
        client.destroy();
        return;
      }
      tries += 1;
      const port = ports[next % ports.length];
      next += 1;
      const upstream = connect({ host: '127.0.0.1', port });
      let connected = false;
      upstream.on('error', () => {
        if (connected) upstream.destroy(); // 'close' then ends the client side too
        else if (!client.destroyed) tryNext();
      });
      upstream.once('connect', () => {
        connected = true;
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        open.add(upstream);
        upstream.once('close', () => {
          open.delete(upstream);
          client.destroy();
        });
        client.once('close', () => upstream.destroy());
        client.on('data', (chunk) => {
          if (trap && chunk.includes(trap.pattern)) {
            const { ran, sprung } = trap;
            trap = null;
            // The peer sees its connection fail mid-request. With `ran`, the request
            // reaches the server first (it runs what it read before the close), so only
            // the reply is lost.
            if (ran) upstream.end(chunk);
            else upstream.destroy();
            client.destroy();
            sprung();
            return;
          }
          upstream.write(chunk);
        });
        client.once('end', () => upstream.end());
        upstream.pipe(client);
        client.resume();
      });
    };
    tryNext();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    /**
     * Breaks the connection that next sends `pattern` (a string), as a network failure at
     * that instant would: the request is lost, or with `ran` it reaches the server but its
     * reply is lost. Resolves once it has.
     */
    trap(pattern, { ran = false } = {}) {
      return new Promise((sprung) => {
        trap = { pattern: Buffer.from(pattern), ran, sprung };
      });
    },
    /** Ends every open connection at once, as a network failure would. */
    cut() {
      for (const socket of open) socket.destroy();
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
