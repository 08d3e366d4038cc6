"""reasonlab: compare post-training methods on accuracy and on reasoning quality.

The code lives in the repository's top-level folders (core/, tasks/, models/, eval/, rewards/,
trainers/, launch/, conf/); pyproject.toml installs each of them under this one package, so that
`reasonlab.eval` is eval/, `reasonlab.trainers` is trainers/ and nothing but `reasonlab` is added
to site-packages. The entry points are `python -m reasonlab.train`, `reasonlab.evaluate`,
`reasonlab.study` and `reasonlab.compare` (console scripts `reasonlab-train`, ...).

From Python: `from reasonlab.eval import evaluate` (see README, "The evaluator from Python").
"""

__version__ = "0.1.0"
