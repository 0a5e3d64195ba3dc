"""IHE PDI web content (RAD TF-2 4.47 Web Content Option): XHTML pages, SR documents as XHTML, disc layout."""
