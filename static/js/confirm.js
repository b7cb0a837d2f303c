// Forms that give something up (seats held, a virtual account) ask once before they
// are sent: <form data-confirm="question">. Without JavaScript they are sent at once.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
