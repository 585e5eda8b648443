/**
 * Preloaded into serverless-offline (`node --require`) by the local stack. serverless-offline adds
 * no 'error' listener to the sockets it accepts, so one text frame of invalid UTF-8 (which `ws`
 * reports as an error event) is an uncaught exception that ends the whole process. This gives every
 * accepted socket a listener: `ws` then closes that one socket with 1007, as API Gateway closes a
 * connection that breaks the protocol, and its $disconnect runs; everything else keeps running.
 */
const { WebSocketServer } = require('ws');

const handleUpgrade = WebSocketServer.prototype.handleUpgrade;
WebSocketServer.prototype.handleUpgrade = function guardedHandleUpgrade(req, socket, head, callback) {
  return handleUpgrade.call(this, req, socket, head, (webSocket, request) => {
    webSocket.on('error', (error) => {
      console.error(`[socket-guard] closed a WebSocket that broke the protocol: ${error.message}`);
    });
    callback(webSocket, request);
  });
};
