"""Write the worked example's data: loan decisions before and after a fairness fix.

    python examples/governance/make_data.py [FOLDER]

decisions-v1.csv: the first model's decisions (column ``approved``); it approves women less
often than men with the same income and debt, which the build-and-validate gate must catch.
decisions-v2.csv: the retrained model's repayment probability (column ``score``, approved at
0.5) from income and debt alone. The repayment labels are the same in both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def applicants(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n).clip(10, None)
    debt = rng.normal(20, 8, n).clip(0, None)
    gender = rng.choice(["F", "M"], n)
    logit = 0.08 * (income - 50) - 0.1 * (debt - 20) + 1.2 + 0.4 * (gender == "M")
    repaid = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income.round(1), "debt": debt.round(1), "gender": gender,
                         "repaid": repaid})


def main(folder: Path) -> None:
    frame = applicants()
    score = 0.08 * (frame["income"] - 50) - 0.1 * (frame["debt"] - 20)
    v1 = frame.assign(approved=((score - 1.0 * (frame["gender"] == "F")) > -0.6).astype(int))
    v2 = frame.assign(score=(1 / (1 + np.exp(-(score + 1.4)))).round(4))
    folder.mkdir(parents=True, exist_ok=True)
    v1.to_csv(folder / "decisions-v1.csv", index=False)
    v2.to_csv(folder / "decisions-v2.csv", index=False)
    print(f"wrote {folder / 'decisions-v1.csv'} and {folder / 'decisions-v2.csv'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("loan-data"))
