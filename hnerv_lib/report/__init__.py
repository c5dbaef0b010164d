"""The app on top: notebook parameters (params), the papermill runner (runner), summary.md (summary), figures."""
