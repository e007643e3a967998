"""`python -m imgclf`: the `imgclf` command (`imgclf.cli`), where the console script is not
on PATH."""

from imgclf.cli import main

main()
