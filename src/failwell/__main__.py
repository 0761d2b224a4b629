"""``python -m failwell``: the same command line as ``failwell``."""

from failwell.cli import main

if __name__ == "__main__":
    main()
