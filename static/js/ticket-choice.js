// Cancelling some tickets of a booking: the refund shown follows the boxes ticked, so
// the page is asked again as soon as one changes. Without JavaScript, "Update the
// refund" does the same. The last ticked box cannot be unticked: to keep nothing is
// to cancel the booking, which ticking every box does.
(() => {
  const form = document.getElementById("ticket-choice");
  if (!form) return;
  const button = document.getElementById("update-refund");
  if (button) button.hidden = true;
  form.addEventListener("change", (event) => {
    const ticked = form.querySelectorAll('input[name="tickets"]:checked');
    if (ticked.length === 0) {
      event.target.checked = true;
      return;
    }
    const confirm = document.getElementById("confirm-cancel");
    if (confirm) confirm.disabled = true; // its amount is about to change
    form.requestSubmit();
  });
})();
