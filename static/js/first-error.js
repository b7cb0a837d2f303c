// A form sent back with errors (the pay form, the ticket types) may be far down a long
// page: on a phone the customer would see only its top. Bring the error into view.
(() => {
  const error = document.querySelector("[data-scroll-here]");
  if (!error) return;
  error.scrollIntoView({ block: "center" });
  error.focus({ preventScroll: true });
})();
