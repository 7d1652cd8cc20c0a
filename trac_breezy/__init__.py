"""trac-breezy: Trac and Breezy's smart server behind one Apache httpd."""
