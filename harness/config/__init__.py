"""What to run: options, the matrix and matrix files, model cards, the zoo catalog, paired-sample sizing."""
