// Keyword spotting in the browser: the project's front end, model and decoder, ported.
//
// - Mfcc: tf.raw_ops.AudioSpectrogram (periodic Hann window, power spectrum of the next power
//   of two FFT) then tf.raw_ops.Mfcc (mel filterbank 20-4000 Hz of 40 channels on the magnitude,
//   log with a 1e-12 floor, DCT-II scaled by sqrt(2 / channels)), in double precision like
//   TensorFlow's kernels, the spectrum rounded to float32 where TensorFlow stores it.
// - SpeechEmbedding: pipeline/frontends/embedding.py's stream_features as the audio arrives: the
//   log-mel (int16-valued samples, the mel model's 512-sample window, power spectrum, mel matrix,
//   floor, dB; in double precision), clamped at top_db below the loudest mel value heard so far
//   (Python: the whole recording's loudest, which live audio does not know yet), scaled
//   (/ 10 + 2), and the embedding model (TensorFlow Lite) on every 76 frames, 8 frames apart;
//   with vocal-tract views (export.views), the mel of each view (its own mel matrix) and its own
//   clamp and embeddings, the views side by side as Python's frame_features gives them.
// - Recognizer: pipeline/streaming/recognize.py's RecognizeCommands, rule for rule.
// - Spotter: windows of the microphone stream every clip stride, scored by the exported model
//   (TensorFlow Lite in WebAssembly; the mean over the views), their scores fed to the Recognizer.
'use strict';

(function (global) {
  const SILENCE = '_silence_';

  function nextPowerOfTwo(x) {
    let n = 1;
    while (n < x) n *= 2;
    return n;
  }

  // In-place radix-2 complex FFT of re/im (Float64Array, length a power of two).
  function fft(re, im) {
    const n = re.length;
    for (let i = 1, j = 0; i < n; i++) {
      let bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) {
        [re[i], re[j]] = [re[j], re[i]];
        [im[i], im[j]] = [im[j], im[i]];
      }
    }
    for (let size = 2; size <= n; size *= 2) {
      const half = size / 2;
      const step = (-2 * Math.PI) / size;
      for (let k = 0; k < half; k++) {
        const wr = Math.cos(step * k);
        const wi = Math.sin(step * k);
        for (let start = 0; start < n; start += size) {
          const a = start + k;
          const b = a + half;
          const tr = re[b] * wr - im[b] * wi;
          const ti = re[b] * wi + im[b] * wr;
          re[b] = re[a] - tr;
          im[b] = im[a] - ti;
          re[a] += tr;
          im[a] += ti;
        }
      }
    }
  }

  const freqToMel = (hz) => 1127.0 * Math.log1p(hz / 700.0);

  class Mfcc {
    // cfg: window_size_samples, frame_stride_samples, sample_rate, feature_bin_count.
    constructor(cfg, lowerHz = 20.0, upperHz = 4000.0, channels = 40) {
      this.windowSize = cfg.window_size_samples;
      this.stride = cfg.frame_stride_samples;
      this.bins = cfg.feature_bin_count;
      this.fftLength = nextPowerOfTwo(this.windowSize);
      this.window = new Float64Array(this.windowSize);
      for (let i = 0; i < this.windowSize; i++) {
        this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / this.windowSize);
      }
      this.re = new Float64Array(this.fftLength);
      this.im = new Float64Array(this.fftLength);
      // The mel filterbank (TensorFlow's MfccMelFilterbank::Initialize).
      const inputLength = this.fftLength / 2 + 1;
      this.channels = channels;
      const melLow = freqToMel(lowerHz);
      const spacing = (freqToMel(upperHz) - melLow) / (channels + 1);
      const centers = new Float64Array(channels + 1);
      for (let i = 0; i <= channels; i++) centers[i] = melLow + spacing * (i + 1);
      const hzPerBin = (0.5 * cfg.sample_rate) / (inputLength - 1);
      this.start = Math.trunc(1.5 + lowerHz / hzPerBin);
      this.end = Math.trunc(upperHz / hzPerBin);
      this.bandMapper = new Int32Array(inputLength);
      this.weights = new Float64Array(inputLength);
      let channel = 0;
      for (let i = 0; i < inputLength; i++) {
        const mel = freqToMel(i * hzPerBin);
        if (i < this.start || i > this.end) {
          this.bandMapper[i] = -2;
          continue;
        }
        while (channel < channels && centers[channel] < mel) channel++;
        this.bandMapper[i] = channel - 1;
        const c = channel - 1;
        this.weights[i] =
          c >= 0
            ? (centers[c + 1] - mel) / (centers[c + 1] - centers[c])
            : (centers[0] - mel) / (centers[0] - melLow);
      }
      // The DCT (TensorFlow's MfccDct).
      this.cosines = [];
      const norm = Math.sqrt(2.0 / channels);
      for (let i = 0; i < this.bins; i++) {
        const row = new Float64Array(channels);
        for (let j = 0; j < channels; j++) row[j] = norm * Math.cos(((i * Math.PI) / channels) * (j + 0.5));
        this.cosines.push(row);
      }
      this.mel = new Float64Array(channels);
    }

    // The features of the frame starting at samples[offset] (windowSize samples from there).
    frame(samples, offset) {
      const { re, im, window, fftLength } = this;
      for (let j = 0; j < fftLength; j++) {
        re[j] = j < this.windowSize ? samples[offset + j] * window[j] : 0;
        im[j] = 0;
      }
      fft(re, im);
      const mel = this.mel;
      mel.fill(0);
      for (let i = this.start; i <= this.end; i++) {
        const power = Math.fround(re[i] * re[i] + im[i] * im[i]);
        const magnitude = Math.sqrt(power);
        const weighted = magnitude * this.weights[i];
        let channel = this.bandMapper[i];
        if (channel >= 0) mel[channel] += weighted;
        channel++;
        if (channel < this.channels) mel[channel] += magnitude - weighted;
      }
      for (let i = 0; i < this.channels; i++) mel[i] = Math.log(Math.max(mel[i], 1e-12));
      const out = new Float32Array(this.bins);
      for (let i = 0; i < this.bins; i++) {
        let sum = 0;
        const row = this.cosines[i];
        for (let j = 0; j < this.channels; j++) sum += row[j] * mel[j];
        out[i] = sum;
      }
      return out;
    }

    // Every whole frame of samples: [frames][bins] (the project's frames_for).
    compute(samples) {
      const frames = [];
      for (let start = 0; start + this.windowSize <= samples.length; start += this.stride) {
        frames.push(this.frame(samples, start));
      }
      return frames;
    }
  }

  // numpy's round (half to even).
  function roundHalfEven(v) {
    const r = Math.round(v);
    return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  class SpeechEmbedding {
    // cfg: the page's frontend (its `embedding` holds the mel constants and sizes); runner: the
    // embedding model ([1, window_frames, mel_bins, 1] -> embedding_dim values).
    constructor(cfg, runner) {
      const e = cfg.embedding;
      this.runner = runner;
      this.melWindow = e.mel_window_samples;
      this.hop = e.mel_hop_samples;
      this.melBins = e.mel_bins;
      this.windowFrames = e.window_frames;
      this.stepFrames = e.window_step_frames;
      this.pad = e.pad_samples;
      this.window = Float64Array.from(e.window);
      // One mel matrix per vocal-tract view, each [fft bin][mel bin].
      this.matrices = e.mel_matrices.map((m) => Float64Array.from(m.flat()));
      this.views = this.matrices.length;
      this.fftBins = e.mel_matrices[0].length;
      this.power = new Float64Array(this.fftBins);
      this.floor = e.floor;
      this.dbFactor = e.db;
      this.topDb = e.top_db;
      this.re = new Float64Array(this.melWindow);
      this.im = new Float64Array(this.melWindow);
      // The padded stream (pad_samples of silence first, as Python pads a recording), as int16
      // values: samples[0] is padded sample samplesStart.
      this.samples = new Float64Array(0);
      this.samplesStart = 0;
      this.total = 0;
      this.frames = 0; // mel frames computed
      this.mel = this.matrices.map(() => []); // per view, the dB of the last window_frames frames
      this.maxDb = this.matrices.map(() => -Infinity); // per view, the loudest mel value so far
      // Embeddings firstEmbedding, firstEmbedding + 1, ...: each an array of one per view.
      this.embeddings = [];
      this.firstEmbedding = 0;
      this.feed(new Float32Array(this.pad));
    }

    // Embeddings computed so far (embedding i: the window of 76 mel frames starting at padded
    // frame 8 i, i.e. at stream sample 80 ms * i less the padding).
    get count() {
      return this.firstEmbedding + this.embeddings.length;
    }

    embedding(i) {
      return this.embeddings[i - this.firstEmbedding];
    }

    // Drop the embeddings before `i` (no window needs them any more).
    forget(i) {
      const drop = Math.min(i - this.firstEmbedding, this.embeddings.length);
      if (drop > 0) {
        this.embeddings.splice(0, drop);
        this.firstEmbedding += drop;
      }
    }

    // Append samples (Float32Array in [-1, 1]); compute every mel frame and embedding they complete.
    feed(samples) {
      const merged = new Float64Array(this.samples.length + samples.length);
      merged.set(this.samples);
      for (let i = 0; i < samples.length; i++) {
        merged[this.samples.length + i] = Math.min(32767, Math.max(-32768, roundHalfEven(samples[i] * 32768)));
      }
      this.samples = merged;
      this.total += samples.length;
      while (this.frames * this.hop + this.melWindow <= this.total) {
        this.addFrame(this.melFrame(this.frames * this.hop - this.samplesStart));
      }
      const keep = this.frames * this.hop; // the next frame's first sample
      if (keep > this.samplesStart) {
        this.samples = this.samples.slice(keep - this.samplesStart);
        this.samplesStart = keep;
      }
    }

    // The dB of the mel frame starting at samples[offset] (before the clamp), one per view.
    melFrame(offset) {
      const { re, im, window, power, melBins } = this;
      for (let j = 0; j < this.melWindow; j++) {
        re[j] = this.samples[offset + j] * window[j];
        im[j] = 0;
      }
      fft(re, im);
      for (let k = 0; k < this.fftBins; k++) power[k] = re[k] * re[k] + im[k] * im[k];
      return this.matrices.map((matrix) => {
        const mel = new Float64Array(melBins);
        for (let k = 0; k < this.fftBins; k++) {
          const row = k * melBins;
          for (let b = 0; b < melBins; b++) mel[b] += power[k] * matrix[row + b];
        }
        for (let b = 0; b < melBins; b++) mel[b] = this.dbFactor * Math.log(Math.max(mel[b], this.floor));
        return mel;
      });
    }

    addFrame(dbs) {
      dbs.forEach((db, v) => {
        for (let b = 0; b < db.length; b++) this.maxDb[v] = Math.max(this.maxDb[v], db[b]);
        this.mel[v].push(db);
        if (this.mel[v].length > this.windowFrames) this.mel[v].shift();
      });
      this.frames++;
      const past = this.frames - this.windowFrames;
      if (past >= 0 && past % this.stepFrames === 0) {
        this.embeddings.push(this.mel.map((_, v) => this.embed(v)));
      }
    }

    // View v's embedding of its last window_frames mel frames, clamped and scaled as Python does.
    embed(v) {
      const { melBins } = this;
      const input = new Float32Array(this.windowFrames * melBins);
      const floor = this.maxDb[v] - this.topDb;
      this.mel[v].forEach((db, t) => {
        for (let b = 0; b < melBins; b++) input[t * melBins + b] = Math.max(db[b], floor) / 10 + 2;
      });
      const [out] = this.runner.run([{ data: input, shape: [1, this.windowFrames, melBins, 1] }]);
      return out;
    }

    // Every embedding of a whole recording, padded at both ends as stream_features pads it: the
    // views side by side in each (Python's frame_features).
    compute(samples) {
      this.feed(samples);
      this.feed(new Float32Array(this.pad));
      return this.embeddings.map((views) => {
        const joined = new Float32Array(views.reduce((n, e) => n + e.length, 0));
        let at = 0;
        for (const e of views) {
          joined.set(e, at);
          at += e.length;
        }
        return joined;
      });
    }
  }

  const FRONT_ENDS = { mfcc: Mfcc, embedding: SpeechEmbedding };

  // pipeline/streaming/recognize.py's RecognizeCommands.
  class Recognizer {
    constructor(labels, s) {
      this.labels = labels;
      this.averageWindowMs = s.average_window_ms;
      this.threshold = s.detection_threshold;
      this.suppressionMs = s.suppression_ms;
      this.minimumCount = s.minimum_count;
      this.minimumMargin = s.minimum_margin;
      this.repeatCommands = Boolean(s.repeat_commands); // absent in an older decoder.json
      this.reset();
    }

    reset() {
      this.results = [];
      this.previousLabel = SILENCE;
      this.previousTime = -Infinity;
      this.ended = false; // the previous command's score has fallen since it was reported
    }

    // Scores of the window starting at timeMs -> {label, score, isNew}.
    process(scores, timeMs) {
      const results = this.results;
      if (results.length && timeMs < results[results.length - 1].time) {
        throw new Error(`results must come in increasing time order (${timeMs} ms)`);
      }
      results.push({ time: timeMs, scores: Float64Array.from(scores) });
      const limit = timeMs - this.averageWindowMs;
      while (results[0].time < limit) results.shift();
      const howMany = results.length;
      const span = timeMs - results[0].time;
      if (howMany < this.minimumCount || span < this.averageWindowMs / 4) {
        return { label: this.previousLabel, score: 0, isNew: false };
      }
      const average = new Float64Array(this.labels.length);
      for (const r of results) for (let i = 0; i < average.length; i++) average[i] += r.scores[i] / howMany;
      let top = 0;
      for (let i = 1; i < average.length; i++) if (average[i] > average[top]) top = i;
      let second = 0;
      if (average.length > 1) {
        second = -Infinity;
        for (let i = 0; i < average.length; i++) if (i !== top) second = Math.max(second, average[i]);
      }
      const label = this.labels[top];
      const score = average[top];
      const sinceLast =
        this.previousLabel === SILENCE || this.previousTime === -Infinity
          ? Infinity
          : timeMs - this.previousTime;
      const passes = score > this.threshold;
      const same = label === this.previousLabel;
      if (!(passes && same)) this.ended = true;
      const isNew =
        passes &&
        (this.minimumMargin <= 0 || score - second >= this.minimumMargin) &&
        (!same || (this.repeatCommands && this.ended)) &&
        sinceLast > this.suppressionMs;
      if (isNew) {
        this.previousLabel = label;
        this.previousTime = timeMs;
        this.ended = false;
      }
      return { label, score, isNew };
    }
  }

  // A TFLite model run by tfjs-tflite (WebAssembly, one thread).
  class TFLiteRunner {
    static async load(url) {
      const runner = new TFLiteRunner();
      runner.model = await global.tflite.loadTFLiteModel(url, { numThreads: 1 });
      return runner;
    }

    // inputs: [{data: Float32Array, shape}] in the model's input order -> Float32Array[] outputs.
    run(inputs) {
      const tf = global.tf;
      const tensors = inputs.map((x) => tf.tensor(x.data, x.shape, 'float32'));
      let out = this.model.predict(tensors.length === 1 ? tensors[0] : tensors);
      const list = Array.isArray(out) ? out : out instanceof tf.Tensor ? [out] : Object.values(out);
      const arrays = list.map((t) => t.dataSync().slice());
      tensors.forEach((t) => t.dispose());
      list.forEach((t) => t.dispose());
      return arrays;
    }
  }

  // The microphone stream, windows of it scored every clip stride and decoded.
  // frontendRunner: the front end's own model (the speech embedding's), null for mfcc.
  class Spotter {
    constructor(config, runner, onResult, frontendRunner = null) {
      this.config = config;
      this.runner = runner;
      this.onResult = onResult;
      this.frontend = new FRONT_ENDS[config.frontend.preprocess](config.frontend, frontendRunner);
      this.recognizer = new Recognizer(config.labels, config.decoder);
      this.rate = config.frontend.sample_rate;
      this.clipSamples = config.frontend.desired_samples;
      this.frameStride = config.frontend.frame_stride_samples;
      this.framesPerClip = config.frontend.feature_shape[0];
      this.bins = config.frontend.feature_shape[1];
      this.clipStride = Math.trunc((config.decoder.clip_stride_ms * this.rate) / 1000);
      // Audio kept: a clip plus a clip stride (the samples from `bufferStart` on).
      this.buffer = new Float32Array(0);
      this.bufferStart = 0;
      this.received = 0;
      this.nextWindow = 0;
      this.frames = new Map(); // absolute start sample -> features (frames reused across windows)
      this.nextFrame = 0; // streaming model: the next frame to feed
      if (config.streaming) {
        // State name -> {data, shape}; zeros start a stream.
        this.states = new Map(
          config.streaming.states.map(([name, shape]) => [
            name,
            { data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape },
          ]),
        );
      }
      this.busyMs = 0;
    }

    frameAt(start) {
      let f = this.frames.get(start);
      if (!f) {
        f = this.frontend.frame(this.buffer, start - this.bufferStart);
        this.frames.set(start, f);
      }
      return f;
    }

    // Append samples (Float32Array at the model's rate); score every window now complete.
    push(samples) {
      const began = performance.now();
      if (this.frontend instanceof SpeechEmbedding) {
        this.received += samples.length;
        this.frontend.feed(samples);
        this.pushEmbeddings();
        this.busyMs += performance.now() - began;
        return;
      }
      const merged = new Float32Array(this.buffer.length + samples.length);
      merged.set(this.buffer);
      merged.set(samples, this.buffer.length);
      this.buffer = merged;
      this.received += samples.length;
      if (this.config.streaming) this.pushStreaming();
      else this.pushWindows();
      // Forget audio and frames no window still needs.
      const keepFrom = Math.min(this.nextWindow, this.nextFrame * this.frameStride || this.nextWindow);
      if (keepFrom > this.bufferStart) {
        this.buffer = this.buffer.slice(keepFrom - this.bufferStart);
        this.bufferStart = keepFrom;
        for (const start of this.frames.keys()) if (start < keepFrom) this.frames.delete(start);
      }
      this.busyMs += performance.now() - began;
    }

    pushWindows() {
      const { framesPerClip, bins, frameStride } = this;
      while (this.nextWindow + this.clipSamples <= this.received) {
        const offset = this.nextWindow;
        const features = new Float32Array(framesPerClip * bins);
        for (let k = 0; k < framesPerClip; k++) features.set(this.frameAt(offset + k * frameStride), k * bins);
        const [scores] = this.runner.run([{ data: features, shape: [1, framesPerClip, bins] }]);
        this.decide(scores, offset);
        this.nextWindow += this.clipStride;
      }
    }

    // The speech embedding: the window starting at o is embeddings o / 80 ms ... + 8, scored once
    // the last of them is computed; its scores are the mean of each view's.
    pushEmbeddings() {
      const { framesPerClip, bins, frameStride } = this;
      const views = this.frontend.views;
      for (;;) {
        const first = this.nextWindow / frameStride;
        if (first + framesPerClip > this.frontend.count) break;
        let mean = null;
        for (let v = 0; v < views; v++) {
          const features = new Float32Array(framesPerClip * bins);
          for (let k = 0; k < framesPerClip; k++) features.set(this.frontend.embedding(first + k)[v], k * bins);
          const [scores] = this.runner.run([{ data: features, shape: [1, framesPerClip, bins] }]);
          if (mean === null) mean = new Float64Array(scores.length);
          for (let i = 0; i < scores.length; i++) mean[i] += scores[i] / views;
        }
        const scores = Float32Array.from(mean);
        this.decide(scores, this.nextWindow);
        this.nextWindow += this.clipStride;
      }
      this.frontend.forget(this.nextWindow / frameStride);
    }

    // The streaming model: one call per frame; the window starting at o is scored by the
    // output after its last frame (pipeline/streaming/scores.py's streaming_scores).
    pushStreaming() {
      const { frameStride, framesPerClip, bins } = this;
      while ((this.nextFrame * frameStride) + this.frontend.windowSize <= this.received) {
        const start = this.nextFrame * frameStride;
        const frame = this.frontend.frame(this.buffer, start - this.bufferStart);
        // The runtime takes and gives tensors in the model's order (config.streaming).
        const { inputs, outputs: outputOrder, states: names } = this.config.streaming;
        const given = inputs.map((key) => (key === 'frame' ? { data: frame, shape: [1, bins] } : this.states.get(key)));
        const outputs = [];
        this.runner.run(given).forEach((data, position) => { outputs[outputOrder[position]] = data; });
        names.forEach(([name, shape], k) => this.states.set(name, { data: outputs[k + 1], shape }));
        const offset = (this.nextFrame - framesPerClip + 1) * frameStride;
        if (offset >= 0 && offset === this.nextWindow) {
          this.decide(outputs[0], offset);
          this.nextWindow += this.clipStride;
        }
        this.nextFrame++;
      }
    }

    decide(scores, offset) {
      const timeMs = Math.floor((offset * 1000) / this.rate);
      const result = this.recognizer.process(scores, timeMs);
      this.onResult(timeMs, result, scores);
    }
  }

  global.KWS = { Mfcc, SpeechEmbedding, Recognizer, TFLiteRunner, Spotter, FRONT_ENDS, fft };
})(typeof window !== 'undefined' ? window : globalThis);
