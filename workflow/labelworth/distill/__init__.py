"""Image sources for the students: `random` real images now; distillation methods join here."""
