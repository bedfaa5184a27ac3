/* A "Copy" button next to a value shown once (a new API key, a generated signing secret): it copies
   the value of its data-copy attribute and says so; the value stays selectable by hand. */
document.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-copy]");
  if (!button) return;
  const done = () => {
    button.textContent = button.dataset.copied || "Copied";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(button.dataset.copy).then(done, () => select(button));
  } else {
    select(button);
  }
});

function select(button) {
  const value = button.parentElement.querySelector("code");
  if (!value) return;
  const range = document.createRange();
  range.selectNodeContents(value);
  window.getSelection().removeAllRanges();
  window.getSelection().addRange(range);
  document.execCommand("copy");
  button.textContent = button.dataset.copied || "Copied";
}
