"""The keyword spotter as a static web page: the export's model run by TensorFlow Lite in
WebAssembly, the front end and the decoder ported to JavaScript (assets/kws.js), the microphone
read through an AudioWorklet. ``page.write_page`` writes it (``kws web``); ``chromium.Browser``
opens it in a headless Chromium with a WAV file as the microphone (tests, benchmarks)."""
