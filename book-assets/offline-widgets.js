/* Loaded after RequireJS and before the vendored widget manager (see nb_ipywidgets_js in _config.yml); part of
 * the book, not vendored.
 * 1. The manager's bundle finds its icon fonts relative to the AMD module path of
 *    "@jupyter-widgets/html-manager/dist/...", which RequireJS would resolve next to the page: map that path,
 *    and __jupyter_widgets_assets_path__, to _static/offline/widgets/ so nothing is fetched from elsewhere.
 * 2. The manager typesets widget labels with MathJax 2's MathJax.Hub.Queue; the book runs MathJax 3, so give
 *    it a Hub.Queue that calls MathJax 3's typesetPromise (without it every widget page logs a TypeError).
 */
(function () {
  var here = document.currentScript && document.currentScript.src;
  if (here) {
    var assets = new URL("offline/widgets/", here).href;
    window.__jupyter_widgets_assets_path__ = assets;
    if (window.require && window.require.config) {
      window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": assets.replace(/\/$/, "") } });
    }
  }
  function typesetLater(element) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise && mj.typesetPromise) {
      mj.startup.promise = mj.startup.promise.then(function () {
        return mj.typesetPromise(element ? [element] : undefined);
      });
    }
  }
  function addHub() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function () {
          for (var k = 0; k < arguments.length; k++) {
            var job = arguments[k];
            if (Array.isArray(job) && job[0] === "Typeset") typesetLater(job[2]);
          }
        },
      };
    }
  }
  document.addEventListener("DOMContentLoaded", addHub);
  window.addEventListener("load", addHub);
})();
