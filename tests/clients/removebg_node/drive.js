// Drives the npm package remove.bg (1.3.0, pinned in package.json) against an alphacut stack.
//
// The package's endpoint is a constant; every call goes through unirest.post(API_ENDPOINT), looked
// up at call time, so this wraps unirest.post to swap remove.bg's host for the stack's. How the
// package builds its requests and reads the answers is left as it is.
//
//   node drive.js plan.json   (plan: {"base": "http://127.0.0.1:3000/Prod", "calls": [...]})
//
// Each call: {"fn": "removeBackgroundFromImageFile" | "...FromImageBase64" | "...FromImageUrl",
// "options": {...}}; "base64img_file" in options is read into base64img. Prints one JSON line per
// call: {"ok": true, "result": {...without base64img}} or {"ok": false, "errors": ...}.
"use strict";
const fs = require("fs");
const unirest = require("unirest");

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const post = unirest.post;
unirest.post = (url) => post.call(unirest, url.replace("https://api.remove.bg", plan.base));
const removebg = require("remove.bg");

async function main() {
  for (const call of plan.calls) {
    const options = Object.assign({}, call.options);
    if (options.base64img_file) {
      options.base64img = fs.readFileSync(options.base64img_file).toString("base64");
      delete options.base64img_file;
    }
    try {
      const result = await removebg[call.fn](options);
      delete result.base64img;
      console.log(JSON.stringify({ ok: true, result }));
    } catch (errors) {
      console.log(JSON.stringify({ ok: false, errors }));
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
