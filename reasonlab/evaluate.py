"""`python -m reasonlab.evaluate`: runs launch/evaluate.py (reasonlab.launch.evaluate)."""

from reasonlab.launch.evaluate import main

if __name__ == "__main__":
    main()
