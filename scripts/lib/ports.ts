// A port on 127.0.0.1 where connections are refused for as long as it is held: a port freed by closing a server
// is only free, and another server may take it before the client that should be refused connects (it happened,
// in the tests and in the transcripts). This one is held by the local end of a connection made here, so the
// kernel lends it to no other server, and nothing listens on it: a SYN there is answered with RST.
import { once } from 'node:events';
import net from 'node:net';

export async function holdRefusedPort(): Promise<{ port: number; release(): void }> {
  const listener = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const holder = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  holder.on('error', () => {});
  const release = () => {
    holder.destroy();
    listener.close();
  };
  try {
    await once(holder, 'connect');
  } catch (err) {
    release();
    throw err;
  }
  return { port: holder.localPort as number, release };
}
