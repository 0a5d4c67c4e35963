"""Generic building blocks shared by every kibitz service. Imports nothing from kibitz."""
