"""`python -m imgclf.classify`: the classify command under its short name; the code lives in
`imgclf.serving.command`."""

from imgclf.serving.command import main

if __name__ == "__main__":
    main()
