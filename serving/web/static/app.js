// The page's only script of its own: htmx settings and the clipboard button.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  // Error answers carry a message fragment (and HX-Retarget to #flash): show it.
  { code: "[45]..", swap: true, error: true },
];

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copyTarget);
  if (!source) return;
  const label = button.textContent;
  try {
    await copyText(source.innerText);
    button.textContent = "Copied";
  } catch (err) {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Alerts in the flash area go away by themselves after a while.
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (target && target.id === "flash") {
    const shown = target.firstElementChild;
    setTimeout(() => { if (shown && shown.isConnected) shown.remove(); }, 12000);
  }
});
