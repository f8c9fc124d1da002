"""The control plane's pages, one module per page family; each exports `handlers`."""
