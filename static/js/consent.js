// "Agree to all" on the sign-up forms (templates/accounts/_consent.html): ticks or
// clears every consent box, and shows ticked once they all are. It is drawn hidden and
// shown from here, so without JavaScript each box is simply ticked on its own.
document.querySelectorAll("[data-consent-all]").forEach((wrapper) => {
  const all = wrapper.querySelector("input[type=checkbox]");
  const boxes = [...wrapper.closest("fieldset").querySelectorAll("input[type=checkbox]")].filter((box) => box !== all);
  const follow = () => {
    all.checked = boxes.every((box) => box.checked);
  };
  all.addEventListener("change", () => {
    boxes.forEach((box) => {
      box.checked = all.checked;
    });
  });
  boxes.forEach((box) => box.addEventListener("change", follow));
  follow();
  wrapper.hidden = false;
});
