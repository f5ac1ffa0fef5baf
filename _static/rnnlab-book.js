// rnnlab book: a display equation wider than its column is scaled down to fit it
// (MathJax 3 does not break lines), so that phones show the whole equation.
// Loaded on every page by Jupyter Book (every .js in _static/ is).
(function () {
  "use strict";
  const SMALLEST = 0.55;   // never below 55 % of the text size; narrower screens scroll

  function fitEquations() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (eq) {
      eq.style.fontSize = "";
      const box = eq.clientWidth;   // the column, less an equation number beside it
      const needed = eq.scrollWidth;
      if (needed > box && box > 0) {
        const scale = Math.max(SMALLEST, (box - 2) / needed);
        eq.style.fontSize = (100 * scale).toFixed(1) + "%";
      }
    });
  }

  function whenTypeset() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(fitEquations);
    }
  }

  window.addEventListener("load", whenTypeset);
  let pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(fitEquations, 150);
  });
})();
