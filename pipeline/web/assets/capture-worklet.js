// Passes the microphone's samples (first channel) to the page, a block at a time.
class KwsCapture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel && channel.length) this.port.postMessage(channel.slice());
    return true;
  }
}
registerProcessor('kws-capture', KwsCapture);
