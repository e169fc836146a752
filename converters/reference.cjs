// Runs nsfwjs itself (pure-JS tfjs CPU backend) on arrays written by converters/reference.py.
// argv: <job.json>. job = {mode: "tensor"|"image", inputs: [{file, shape}], out: "<file>"}
//  tensor: float32 NHWC batch in [0, 1] at 224x224 fed to the layers model directly;
//  image:  uint8 HxWx3 pixels handed to nsfwjs's own infer() (its scaling and resize).
const fs = require("fs");
const tf = require("@tensorflow/tfjs");
const nsfwjs = require("nsfwjs");
const { MobileNetV2Model } = require("nsfwjs/models/mobilenet_v2");

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  await tf.setBackend("cpu");
  const console_info = console.info;
  console.info = () => {}; // nsfwjs greets on load; keep stdout clean
  const model = await nsfwjs.load("MobileNetV2", { modelDefinitions: [MobileNetV2Model] });
  console.info = console_info;
  const results = [];
  for (const input of job.inputs) {
    const buf = fs.readFileSync(input.file);
    let probs;
    if (job.mode === "tensor") {
      const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const out = tf.tidy(() => model.model.predict(tf.tensor4d(data, input.shape)));
      probs = Array.from(await out.data());
      out.dispose();
      const n = input.shape[0];
      for (let i = 0; i < n; i++) results.push(probs.slice(i * 5, i * 5 + 5));
    } else {
      const img = tf.tensor3d(new Int32Array(Uint8Array.from(buf)), input.shape, "int32");
      const out = model.infer(img);
      probs = Array.from(await out.data());
      out.dispose();
      img.dispose();
      results.push(probs);
    }
  }
  fs.writeFileSync(job.out, JSON.stringify({ tfjs: tf.version.tfjs, backend: tf.getBackend(), probs: results }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
