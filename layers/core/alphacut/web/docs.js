// Renders the inline OpenAPI document as a reference: one section per tag, one entry per operation
// with its parameters, request bodies and answers. Text goes in with textContent, never as HTML.
"use strict";

const spec = JSON.parse(document.getElementById("openapi").textContent);
const root = document.getElementById("reference");

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function schemaText(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  const parts = [schema.type || ""];
  if (schema.enum) parts.push(`one of ${schema.enum.join(", ")}`);
  if (schema.default !== undefined) parts.push(`default ${schema.default}`);
  if (schema.minimum !== undefined) parts.push(`${schema.minimum}..${schema.maximum}`);
  return parts.filter(Boolean).join("; ");
}

function table(headings, rows) {
  const t = element("table");
  const head = t.createTHead().insertRow();
  headings.forEach((h) => head.appendChild(element("th", h)));
  const body = t.createTBody();
  rows.forEach((cells) => { const row = body.insertRow(); cells.forEach((c) => row.insertCell().textContent = c); });
  return t;
}

const info = element("section");
info.appendChild(element("p", `${spec.info.title} ${spec.info.version}: ${spec.info.description}`));
root.appendChild(info);

for (const tag of spec.tags || [{ name: "native" }]) {
  const section = element("section");
  section.id = `tag-${tag.name}`;
  section.appendChild(element("h2", tag.name));
  if (tag.description) section.appendChild(element("p", tag.description, "muted"));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (!(operation.tags || ["native"]).includes(tag.name)) continue;
      const entry = element("article", undefined, "operation");
      entry.dataset.path = path;
      entry.appendChild(element("h3", `${method.toUpperCase()} ${path}`));
      entry.appendChild(element("p", operation.summary + ((operation.security || []).length ? "" : " (no key)")));
      if (operation.description) entry.appendChild(element("p", operation.description, "muted"));
      if (operation.parameters && operation.parameters.length) {
        entry.appendChild(table(["parameter", "in", "schema", "about"], operation.parameters.map(
          (p) => [p.name, p.in, schemaText(p.schema), (p.schema && p.schema.description) || ""])));
      }
      if (operation.requestBody) {
        entry.appendChild(element("p", `bodies: ${Object.keys(operation.requestBody.content).join(", ")}`));
      }
      entry.appendChild(table(["status", "answer"], Object.entries(operation.responses || {}).map(
        ([status, answer]) => [status, answer.description])));
      section.appendChild(entry);
    }
  }
  root.appendChild(section);
}
