// The page: load config.json and the model, then listen (on a click, or at once with
// ?autostart=1) and show each detection as `time_s label score` in #detections.
'use strict';

(async function () {
  const $ = (id) => document.getElementById(id);
  const status = (text) => { $('status').textContent = text; };
  const state = (window.kwsState = { ready: false, listening: false, error: null, windows: 0 });
  try {
    const config = await (await fetch('config.json')).json();
    tf.setBackend('cpu');
    tflite.setWasmPath('runtime/');
    const runner = await KWS.TFLiteRunner.load(config.model);
    // The front end's own model (the speech embedding's), if it has one.
    const frontendRunner = config.frontend.embedding
      ? await KWS.TFLiteRunner.load(config.frontend.embedding.model)
      : null;
    window.kwsPage = { config, runner, frontendRunner };
    const words = config.labels.filter((l) => !l.startsWith('_'));
    $('about').textContent =
      `Words: ${words.join(', ')}. Model: ${config.model} (${config.frontend.preprocess} ` +
      `features, a window every ${config.decoder.clip_stride_ms} ms, threshold ` +
      `${config.decoder.detection_threshold}).`;
    $('bars').innerHTML = config.labels
      .map((l, i) => `<div><span>${l}</span><i id="bar${i}" style="width:0"></i></div>`)
      .join('');
    state.ready = true;
    status('Ready.');

    async function start() {
      $('start').disabled = true;
      const rate = config.frontend.sample_rate;
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      const context = new AudioContext({ sampleRate: rate });
      await context.audioWorklet.addModule('capture-worklet.js');
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, 'kws-capture');
      const spotter = new KWS.Spotter(config, runner, (timeMs, result, scores) => {
        state.windows++;
        if (state.windows % 4 === 0) {
          scores.forEach((s, i) => { $('bar' + i).style.width = `${Math.round(s * 20)}em`; });
        }
        if (result.isNew && !result.label.startsWith('_silence_')) {
          const line = `${(timeMs / 1000).toFixed(3)} ${result.label} ${result.score.toFixed(3)}`;
          $('detections').textContent += line + '\n';
          $('current').textContent = result.label;
        }
      }, frontendRunner);
      state.spotter = spotter;
      node.port.onmessage = (event) => {
        try {
          spotter.push(event.data);
        } catch (error) {
          state.error = String(error);
          status('Error: ' + error);
        }
        const seconds = spotter.received / rate;
        state.seconds = seconds;
        state.realTimeFactor = seconds > 0 ? spotter.busyMs / 1000 / seconds : 0;
        if (state.windows % 10 === 0) {
          $('stats').textContent =
            `${seconds.toFixed(1)} s heard, ${state.windows} windows scored, real-time factor ` +
            `${state.realTimeFactor.toFixed(4)} (time spent on features, model and decoder / audio time)`;
        }
      };
      source.connect(node);
      const mute = context.createGain(); // keeps the node pulled, plays nothing
      mute.gain.value = 0;
      node.connect(mute).connect(context.destination);
      state.listening = true;
      status(`Listening (${context.sampleRate} Hz)...`);
    }

    $('start').onclick = () => start().catch((error) => { state.error = String(error); status('Error: ' + error); });
    if (new URLSearchParams(location.search).get('autostart') === '1') $('start').onclick();
  } catch (error) {
    state.error = String(error);
    status('Error: ' + error);
  }
})();
