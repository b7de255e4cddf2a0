// The console's own script: copy-to-clipboard and download buttons. Every page works without it;
// the buttons it drives stay hidden until it runs. No inline handlers: the CSP allows none.
"use strict";

function enhance(root) {
  for (const button of root.querySelectorAll("[data-copy], [data-download]")) {
    button.hidden = false;
  }
}

function textOf(button, attribute) {
  const source = document.getElementById(button.getAttribute(attribute));
  return source ? (source.value !== undefined ? source.value : source.textContent).trim() : "";
}

function announce(button, message) {
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = message;
  setTimeout(() => { button.textContent = label; }, 2000);
}

document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    try {
      await navigator.clipboard.writeText(textOf(copy, "data-copy"));
      announce(copy, "Copied");
    } catch (error) {
      announce(copy, "Select and copy it by hand");
    }
    return;
  }
  const download = event.target.closest("[data-download]");
  if (download) {
    const blob = new Blob([textOf(download, "data-download") + "\n"], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = download.dataset.filename || "download.txt";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }
});

document.addEventListener("DOMContentLoaded", () => enhance(document));
document.addEventListener("htmx:afterSwap", (event) => enhance(event.target));

// Branding: the colour picker and its text field hold one value; typing a full #rrggbb moves the
// picker, picking fills the text (without the script the server takes the one that changed).
document.addEventListener("input", (event) => {
  const source = event.target.closest("[data-colour-sync]");
  const other = source && document.getElementById(source.dataset.colourSync);
  if (other && /^#[0-9a-fA-F]{6}$/.test(source.value)) {
    other.value = source.value.toLowerCase();
  }
});
