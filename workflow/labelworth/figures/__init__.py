"""One module per figure or table. Figures read results files only; nothing here trains."""
