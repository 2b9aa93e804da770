// MathJax 3, served with the site (docs/assets/mathjax): math renders offline.
// $...$ and $$...$$ in the notebooks, \(...\) and \[...\] from pymdownx.arithmatex.
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { skipHtmlTags: ["script", "noscript", "style", "textarea", "pre", "code"] },
  startup: {
    ready: () => {
      MathJax.startup.defaultReady();
      // Material's instant navigation swaps pages without reloading: typeset each
      if (window.document$) {
        window.document$.subscribe(() => MathJax.typesetPromise());
      }
    },
  },
};
