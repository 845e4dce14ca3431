// Behaviour of the live job log: follow new lines unless the reader scrolled up; filter by level.
(function () {
  function logBox() { return document.getElementById("log"); }
  let follow = true;

  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 24; }
  function setFollow(value) {
    follow = value;
    const state = document.getElementById("follow-state");
    if (state) state.textContent = value ? "Following new lines" : "Paused: scroll to the bottom to follow";
  }

  document.addEventListener("DOMContentLoaded", function () {
    const log = logBox();
    if (!log) return;
    log.scrollTop = log.scrollHeight;
    log.addEventListener("scroll", function () { setFollow(atBottom(log)); });
    const only = document.getElementById("only-problems");
    if (only) only.addEventListener("change", function () {
      log.classList.toggle("only-problems", only.checked);
      if (follow) log.scrollTop = log.scrollHeight;
    });
  });

  // Earlier lines go on top of the log: keep the lines the reader was looking at in place.
  let fromBottom = null;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    const log = logBox();
    if (log && evt.detail.target === log) fromBottom = log.scrollHeight - log.scrollTop;
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    const log = logBox();
    if (log && evt.detail.target === log && fromBottom !== null) {
      log.scrollTop = log.scrollHeight - fromBottom;
      fromBottom = null;
    }
  });

  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    const log = logBox();
    if (log && evt.detail.target === log && follow) log.scrollTop = log.scrollHeight;
  });
})();

// On a narrow screen the navigation folds behind a Menu button (the stylesheet hides it there).
document.addEventListener("DOMContentLoaded", function () {
  const toggle = document.querySelector(".nav-toggle");
  const nav = document.getElementById("main-nav");
  if (!toggle || !nav) return;
  toggle.addEventListener("click", function () {
    const open = nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
});
