// Fills the status page from the server's own health endpoints.
"use strict";

async function check(path, elementId) {
  const element = document.getElementById(elementId);
  try {
    const response = await fetch(path, { cache: "no-store" });
    const body = await response.json();
    element.textContent = response.ok ? body.status : (body.detail || body.title);
    element.dataset.state = response.ok ? "ok" : "bad";
    return body;
  } catch (error) {
    element.textContent = "unreachable";
    element.dataset.state = "bad";
    return null;
  }
}

window.addEventListener("DOMContentLoaded", async () => {
  const health = await check("/healthz", "health");
  document.getElementById("version").textContent = health && health.version ? health.version : "unknown";
  await check("/readyz", "ready");
});
