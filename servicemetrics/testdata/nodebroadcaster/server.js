// Reference broadcaster of servicemetrics' BenchmarkServiceFanout: the
// fan-out of the original Node.js service-metrics, a ws.Server that sends
// every message to every open client with client.send.
//
// It listens on 127.0.0.1 (port from argv[2], default any free port) and
// prints "listening <port>" on stdout. Messages to broadcast arrive on
// stdin, each as a 4-byte big-endian length and that many bytes of UTF-8
// JSON; each one is sent as a text message to every open client, as the
// original sent JSON.stringify(message) in wss.clients.forEach. A new client
// gets the welcome the original sent, then the latest message of each
// "type" broadcast so far; a JSON message from a client is acknowledged as
// promflow's hub does. End of stdin stops the server.
'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
const latest = new Map(); // type -> message (string)

wss.on('connection', (ws) => {
  ws.send(JSON.stringify({
    type: 'connection',
    message: 'Connected to service-metrics',
    timestamp: new Date().toISOString(),
  }));
  for (const msg of latest.values()) ws.send(msg);
  ws.on('message', (data) => {
    let type = 'unknown';
    try {
      type = JSON.parse(data.toString()).type;
    } catch (e) {
      // answered as unknown
    }
    ws.send(JSON.stringify({ type: 'ack', requestType: type, timestamp: new Date().toISOString() }));
  });
  ws.on('error', () => {});
});

function broadcast(msg) {
  const m = /^\{"type":"([^"]*)"/.exec(msg);
  if (m) latest.set(m[1], msg);
  wss.clients.forEach((client) => {
    if (client.readyState === WebSocket.OPEN) client.send(msg);
  });
}

let pending = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 4) {
    const n = pending.readUInt32BE(0);
    if (pending.length < 4 + n) break;
    broadcast(pending.toString('utf8', 4, 4 + n));
    pending = pending.subarray(4 + n);
  }
});
process.stdin.on('end', () => {
  for (const client of wss.clients) client.terminate();
  wss.close();
  server.close();
  process.exit(0);
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
