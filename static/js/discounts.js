// The checkout's ticket types apply as soon as one is chosen, so that the total and the
// pay button never show a price other than the one the customer picked. Without
// JavaScript the "Apply ticket types" button does the same.
(() => {
  const form = document.getElementById("discount-form");
  if (!form) return;
  const apply = document.getElementById("discount-apply");
  if (apply) apply.hidden = true; // a choice applies by itself
  form.addEventListener("change", (event) => {
    if (event.target.tagName !== "SELECT") return;
    const pay = document.getElementById("pay-button");
    if (pay) pay.disabled = true; // its amount is about to change
    form.requestSubmit();
  });
})();
