"""`python -m imgclf.classify`: the classify command under its short name; the code lives in
`imgclf.serving.classify`."""

from imgclf.serving.classify import main

if __name__ == "__main__":
    main()
