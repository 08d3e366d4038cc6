"""`python -m reasonlab.train`: runs launch/train.py (reasonlab.launch.train)."""

from reasonlab.launch.train import main

if __name__ == "__main__":
    main()
