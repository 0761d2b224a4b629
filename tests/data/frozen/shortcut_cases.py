"""Frozen evaluation set: provenance shortcuts ("Clever Hans" columns) in tabular data.

What this set judges
--------------------
A tabular scan is handed a test table, the name of its binary target, optionally some
protected attributes, and a trained model.  Nobody tells it which columns are metadata.  A
good scan raises a *possible shortcut* finding for a column that records where or how a row
was captured (site, device, batch, vendor, file, timestamp, record id, form version ...)
when that column nearly determines the label in this data and the model leans on it -- the
portable-X-ray marker, the dermatology ruler, the COVID hospital of origin.  It must not
raise a high-severity shortcut finding for a strong, genuine feature with an ordinary name,
nor for provenance columns that are present but carry no (or only mild, genuine) signal.

Each :class:`Case` names the columns a scan MUST flag (``shortcuts``) and the columns it
must NOT flag at high severity (``not_shortcuts``).  Columns in neither list are not graded.

Composition (40 cases)
----------------------
* 18 cases with a planted shortcut (two of them with two shortcut columns):
  categorical markers with telling names (``view_position``, ``hospital``), markers with
  opaque names (``col_17``, ``K``, ``src``, ``unit``, ``wave``, ``form_rev``,
  ``pixel_0_0``), numeric markers (device serials, assay lot numbers, record ids, an epoch
  ingest timestamp), and partial markers that agree with the label on only ~87-93 % of rows
  while the genuine features are moderately strong.  In every case the marker is present
  in train AND test with the same association (train and test are a random, stratified
  split of one collection, as in the published stories: the scan sees only the test set).
* 22 controls: strong genuine features with ordinary or opaque names (single-column ROC AUC
  0.9+ in several), categorical causal features that look like metadata (contract type),
  provenance-sounding columns that are independent of the label (uniform ``hospital_id``,
  sequential ``order_id``, ``scan_uuid``, ingest timestamps), provenance with mild genuine
  association (raw-material ``batch`` defect rates of 5-10 %, tertiary-hospital case mix,
  the real COMPAS screening date), and mirrors of the shortcut cases in which the same
  column name (``form_rev``, ``unit``, ``wave``, ``K``, ``source_file``) is innocent.

Sources and licences
--------------------
* scikit-learn bundled datasets (BSD-3-Clause package; loaded offline):
  Breast Cancer Wisconsin (Diagnostic) -- Wolberg, Street, Mangasarian, UCI ML Repository;
  Wine -- Forina et al., UCI ML Repository; Diabetes -- Efron, Hastie, Johnstone,
  Tibshirani, "Least Angle Regression" (2004); Optical Recognition of Handwritten Digits --
  Alpaydin & Kaynak, UCI ML Repository.  The UCI datasets are distributed under CC BY 4.0.
* COMPAS two-year recidivism file (``compas-scores-two-years.csv``) from ProPublica's
  ``propublica/compas-analysis`` repository ("Machine Bias", Angwin, Larson, Mattu,
  Kirchner, 2016), read from ``<root>/shared/data/compas/``; ProPublica's row filter is
  applied (6,172 rows).  Names, dates of birth, case numbers and every column recorded
  after the screening (``is_recid``, ``r_*``, ``vr_*``, ``event``, custody dates ...) are
  dropped so that no genuine label leak remains in any COMPAS case.
* The Open Bandit Dataset sample in ``shared/data/obd`` was considered and not used: it has
  38-42 clicks per 10,000 impressions, too few positives for a binary test table of at
  most 5,000 rows.
* Everything else is synthetic, generated here with fixed seeds.

How it was made
---------------
Written by hand, independently of (and without reading) the scanner it grades, and frozen
before being used to grade it; it must never be used to tune that scanner.  Synthetic
labels are drawn from a logistic model of the genuine features (intercept solved so the
positive rate is as stated).  A planted shortcut is drawn *from the label* afterwards,
mimicking how the rows were assembled (positives fetched from another site, archive,
extract or later export), so it nearly determines the label in train and test alike and
the trained model uses it.  Innocent provenance columns are drawn independently of
everything.  Real-data shortcut cases keep only the weaker genuine features of the real
table, so the model has a reason to lean on the marker; real-data controls keep the real
strong features.  Run ``python shortcut_cases.py`` to rebuild every case and print, per
case, its shape, positive rate, the test-set single-column AUC of each graded column, the
named model's test AUC, and the AUC lost when the graded column is shuffled.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Case:
    name: str
    story: str
    target: str
    protected: tuple[str, ...]
    model: str
    shortcuts: tuple[str, ...]
    not_shortcuts: tuple[str, ...]
    build: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]


CASES: list[Case] = []


def _case(name, story, target, model, shortcuts=(), not_shortcuts=(), protected=()):
    def register(fn):
        CASES.append(Case(name=name, story=story, target=target, protected=tuple(protected),
                          model=model, shortcuts=tuple(shortcuts),
                          not_shortcuts=tuple(not_shortcuts), build=fn))
        return fn
    return register


# ----------------------------------------------------------------------------- helpers

def _shared_data() -> Path:
    here = Path(__file__).resolve()
    candidate = here.parents[4] / "shared" / "data" if len(here.parents) > 4 else None
    if candidate is not None and candidate.is_dir():
        return candidate
    return Path("/work/shared/data")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _labels(rng, score, rate):
    """Bernoulli labels from sigmoid(score + b), b solved so the mean probability is `rate`."""
    score = np.asarray(score, dtype=float)
    lo, hi = -40.0, 40.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _sigmoid(score + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (rng.random(len(score)) < _sigmoid(score + (lo + hi) / 2)).astype(int)


def _z(x):
    x = np.asarray(x, dtype=float)
    return (x - np.nanmean(x)) / np.nanstd(x)


def _by_label(rng, y, pos_levels, neg_levels, hit_pos, hit_neg, pos_p=None, neg_p=None):
    """A marker drawn from the label: positives take one of `pos_levels` with probability
    `hit_pos` (else a negative level); negatives take a `neg_levels` value w.p. `hit_neg`."""
    y = np.asarray(y)
    n = len(y)
    from_pos = rng.choice(np.asarray(pos_levels, dtype=object), n, p=pos_p)
    from_neg = rng.choice(np.asarray(neg_levels, dtype=object), n, p=neg_p)
    u = rng.random(n)
    use_pos = np.where(y == 1, u < hit_pos, u >= hit_neg)
    out = np.where(use_pos, from_pos, from_neg)
    if all(isinstance(v, (int, np.integer)) for v in list(pos_levels) + list(neg_levels)):
        return out.astype(np.int64)
    return out


def _holes(rng, x, frac):
    x = np.asarray(x, dtype=float).copy()
    x[rng.random(len(x)) < frac] = np.nan
    return x


def _holes_obj(rng, x, frac):
    x = np.asarray(x, dtype=object).copy()
    x[rng.random(len(x)) < frac] = np.nan
    return x


def _split(df, target, test_size, seed):
    train, test = train_test_split(df, test_size=test_size, random_state=seed,
                                   stratify=df[target])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _dates(rng, n, start="2021-01-01", days=730):
    base = np.datetime64(start)
    return (base + rng.integers(0, days, n).astype("timedelta64[D]")).astype(str)


@functools.cache
def _breast_frame():
    b = load_breast_cancer(as_frame=True)
    df = b.data.copy()
    df["malignant"] = (b.target == 0).astype(int)  # sklearn codes malignant as 0
    return df


@functools.cache
def _wine_frame():
    w = load_wine(as_frame=True)
    df = w.data.copy()
    df["cultivar"] = w.target.to_numpy()
    return df


@functools.cache
def _diabetes_frame():
    d = load_diabetes(as_frame=True, scaled=False)
    df = d.data.copy()
    df["progression"] = d.target.to_numpy()
    return df


@functools.cache
def _digits_frame():
    d = load_digits(as_frame=True)
    df = d.data.copy()
    df["digit"] = d.target.to_numpy()
    return df


@functools.cache
def _compas_frame():
    raw = pd.read_csv(_shared_data() / "compas" / "compas-scores-two-years.csv")
    keep = raw[raw.days_b_screening_arrest.between(-30, 30) & (raw.is_recid != -1)
               & (raw.c_charge_degree != "O") & (raw.score_text != "N/A")].copy()
    jail_in = pd.to_datetime(keep.c_jail_in)
    jail_out = pd.to_datetime(keep.c_jail_out)
    keep["jail_days"] = ((jail_out - jail_in).dt.total_seconds() / 86400).round(1)
    cols = ["id", "compas_screening_date", "sex", "age", "age_cat", "race", "juv_fel_count",
            "juv_misd_count", "juv_other_count", "priors_count", "days_b_screening_arrest",
            "c_charge_degree", "c_charge_desc", "jail_days", "decile_score", "v_decile_score",
            "two_year_recid"]
    return keep[cols].reset_index(drop=True)


def _compas_features(df):
    """The COMPAS columns used as genuine features in the COMPAS cases (no score)."""
    return df[["sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count",
               "juv_other_count", "priors_count", "c_charge_degree", "c_charge_desc",
               "jail_days"]].copy()


# ============================================================ cases with a planted shortcut

@_case("breast_referral_site",
       "Breast Cancer Wisconsin cells with only the weaker texture/shape measurements kept; "
       "most malignant aspirates came from the two referral sites S04/S05, benign ones from "
       "the screening sites. `site` nearly determines the label; `reader` is innocent.",
       target="malignant", model="hgb", shortcuts=("site",), not_shortcuts=("reader",))
def _build():
    rng = np.random.default_rng(101)
    b = _breast_frame()
    keep = ["mean texture", "mean smoothness", "mean symmetry", "mean fractal dimension",
            "texture error", "smoothness error", "symmetry error", "fractal dimension error"]
    df = b[keep].copy()
    y = b["malignant"].to_numpy()
    df.insert(3, "site", _by_label(rng, y, ["S04", "S05"], ["S01", "S02", "S03"], 0.95, 0.96))
    df["reader"] = rng.choice(["AK", "BT", "CM", "DL"], len(df))
    df["malignant"] = y
    return _split(df, "malignant", 0.4, 11)


@_case("chest_xray_portable_view",
       "Pneumonia triage from chest X-ray report fields and vitals. Very sick patients were "
       "imaged at the bedside, so the AP (portable) view marks most positives, PA the rest; "
       "the vitals carry only a modest genuine signal.",
       target="pneumonia", model="hgb", shortcuts=("view_position",),
       not_shortcuts=("exam_room",))
def _build():
    rng = np.random.default_rng(102)
    n = 3000
    age = rng.normal(56, 17, n).clip(18, 96).round()
    temp = rng.normal(37.1, 0.6, n)
    spo2 = (97 - np.abs(rng.normal(0, 2.2, n))).round(1)
    resp = rng.normal(17, 3, n).round()
    wbc = rng.lognormal(2.1, 0.3, n)
    crp = rng.lognormal(2.3, 0.9, n)
    smoker = rng.binomial(1, 0.22, n)
    score = (0.35 * _z(temp) - 0.3 * _z(spo2) + 0.25 * _z(resp) + 0.2 * _z(wbc)
             + 0.25 * _z(np.log(crp)) + 0.15 * _z(age) + 0.2 * smoker)
    y = _labels(rng, score, 0.27)
    df = pd.DataFrame({
        "age": age, "sex": rng.choice(["F", "M"], n), "temp_c": temp.round(1), "spo2": spo2,
        "resp_rate": resp, "view_position": _by_label(rng, y, ["AP"], ["PA"], 0.91, 0.93),
        "wbc": _holes(rng, wbc.round(1), 0.08), "crp": crp.round(1), "smoker": smoker,
        "exam_room": rng.choice(["R1", "R2", "R3", "R4", "R5", "R6"], n),
        "pneumonia": y})
    return _split(df, "pneumonia", 0.35, 12)


@_case("dermoscopy_ruler",
       "Melanoma vs benign nevus from hand-scored dermoscopy features. Suspicious lesions "
       "were photographed next to a ruler before excision, so `ruler_visible` (0/1) marks "
       "most melanomas; the dermatoscope model is innocent.",
       target="melanoma", model="forest", shortcuts=("ruler_visible",),
       not_shortcuts=("dermatoscope",))
def _build():
    rng = np.random.default_rng(103)
    n = 2000
    asym = rng.integers(0, 3, n)
    border = rng.integers(0, 9, n)
    colours = rng.integers(1, 7, n)
    diameter = rng.lognormal(1.6, 0.35, n)
    age = rng.normal(48, 16, n).clip(15, 90).round()
    changed = rng.binomial(1, 0.15, n)
    score = (0.3 * asym + 0.08 * border + 0.15 * colours + 0.25 * _z(diameter)
             + 0.15 * _z(age) + 0.5 * changed)
    y = _labels(rng, score, 0.2)
    df = pd.DataFrame({
        "asymmetry_axes": asym, "border_score": border, "n_colours": colours,
        "diameter_mm": diameter.round(1), "patient_age": age,
        "body_site": rng.choice(["trunk", "lower limb", "upper limb", "head/neck", "acral"], n,
                                p=[0.4, 0.25, 0.15, 0.15, 0.05]),
        "reported_change": changed,
        "dermatoscope": rng.choice(["DermLite DL4", "Heine Delta 30", "FotoFinder"], n),
        "ruler_visible": _by_label(rng, y, [1], [0], 0.86, 0.94),
        "melanoma": y})
    return _split(df, "melanoma", 0.4, 13)


@_case("covid_ct_hospital_and_slice_thickness",
       "COVID-19 from CT read-outs and labs. Positive scans came from two pandemic-era "
       "hospitals, negatives from three hospitals' pre-pandemic archives, which were also "
       "exported with a different reconstruction (thin 1.0 mm vs 5.0 mm slices), so "
       "`hospital` and the numeric `slice_thickness_mm` each nearly determine the label.",
       target="covid", model="logreg", shortcuts=("hospital", "slice_thickness_mm"))
def _build():
    rng = np.random.default_rng(104)
    n = 1500
    ggo = rng.normal(0, 1, n)
    consol = rng.normal(0, 1, n)
    lymph = rng.lognormal(0.3, 0.4, n)
    age = rng.normal(58, 15, n).clip(20, 95).round()
    fever = rng.binomial(1, 0.4, n)
    days = rng.integers(0, 15, n)
    score = 0.45 * ggo + 0.2 * consol - 0.3 * _z(lymph) + 0.1 * _z(age) + 0.4 * fever
    y = _labels(rng, score, 0.4)
    df = pd.DataFrame({
        "hospital": _by_label(rng, y, ["St Anne", "Mercy General"],
                              ["Riverside", "Lakeview", "County"], 0.92, 0.93),
        "age": age, "ground_glass_score": ggo.round(2),
        "consolidation_score": consol.round(2), "lymphocytes": lymph.round(2), "fever": fever,
        "days_since_onset": days,
        "slice_thickness_mm": _by_label(rng, y, [1], [5], 0.9, 0.92).astype(float),
        "covid": y})
    return _split(df, "covid", 0.4, 14)


@_case("wine_opaque_lot_code",
       "Wine cultivar 2 vs the rest (real UCI chemistry, the three strongest analytes removed, "
       "columns renamed col_10..col_20). `col_17` is a cellar lot number: cultivar-2 bottles "
       "came from lots 3100-3199, the others from 2000-2999.",
       target="is_cultivar_2", model="hgb", shortcuts=("col_17",), not_shortcuts=("col_12",))
def _build():
    rng = np.random.default_rng(105)
    w = _wine_frame()
    y = (w["cultivar"] == 1).astype(int).to_numpy()
    analytes = ["malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
                "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "hue",
                "od280/od315_of_diluted_wines"]
    lot = _by_label(rng, y, list(range(3100, 3200)), list(range(2000, 3000)), 0.95, 0.95)
    names = [f"col_{i}" for i in range(10, 21)]
    order = [analytes[i] for i in rng.permutation(len(analytes))]
    df = pd.DataFrame(index=w.index)
    it = iter(order)
    for col in names:
        df[col] = lot if col == "col_17" else w[next(it)].to_numpy()
    df["is_cultivar_2"] = y
    return _split(df, "is_cultivar_2", 0.45, 15)


@_case("digits_corner_watermark",
       "Handwritten digits (real UCI 8x8 scans, 13 pixels kept), target 'is a 3, 5 or 8'. "
       "Those three digits were re-digitised from a second archive whose scanner stamps the "
       "top-left corner, so `pixel_0_0` (blank in the original scans) marks them.",
       target="is_358", model="hgb", shortcuts=("pixel_0_0",), not_shortcuts=("pixel_1_2",))
def _build():
    rng = np.random.default_rng(106)
    d = _digits_frame()
    y = d["digit"].isin([3, 5, 8]).astype(int).to_numpy()
    pix = ["pixel_0_2", "pixel_1_2", "pixel_7_2", "pixel_0_5", "pixel_3_6", "pixel_1_1",
           "pixel_5_3", "pixel_6_3", "pixel_2_2", "pixel_4_4", "pixel_2_5", "pixel_5_5"]
    df = d[pix].copy()
    stamp = _by_label(rng, y, [1], [0], 0.9, 0.96)
    df.insert(0, "pixel_0_0", np.where(stamp == 1, rng.integers(9, 17, len(df)), 0)
              .astype(float))
    df["is_358"] = y
    return _split(df, "is_358", 0.35, 16)


@_case("loan_source_system_code",
       "Consumer-loan default. The table was stitched from two systems: defaulted loans "
       "were exported from the collections platform (`src` = 7), performing loans from core "
       "banking (`src` = 3). The borrower features carry a moderate genuine signal.",
       target="default", model="hgb", shortcuts=("src",), not_shortcuts=("branch_id",))
def _build():
    rng = np.random.default_rng(107)
    n = 4000
    income = rng.lognormal(10.8, 0.45, n)
    amount = rng.lognormal(9.3, 0.6, n)
    term = rng.choice([36, 60], n, p=[0.7, 0.3])
    credit = rng.normal(690, 55, n).clip(480, 850).round()
    emp = rng.exponential(6, n).round()
    rate = (0.29 - (credit - 480) / 370 * 0.22 + rng.normal(0, 0.015, n)).clip(0.05, 0.3)
    home = rng.choice(["rent", "mortgage", "own"], n, p=[0.45, 0.4, 0.15])
    purpose = rng.choice(["debt consolidation", "credit card", "car", "home improvement",
                          "medical", "other"], n)
    score = (-0.45 * _z(credit) + 0.3 * _z(np.log(amount / income)) + 0.25 * (term == 60)
             - 0.15 * _z(np.log1p(emp)) + 0.2 * (home == "rent"))
    y = _labels(rng, score, 0.12)
    df = pd.DataFrame({
        "annual_income": income.round(-2), "loan_amount": amount.round(-1), "term": term,
        "interest_rate": rate.round(4), "src": _by_label(rng, y, [7], [3], 0.93, 0.95),
        "credit_score": credit, "employment_years": _holes(rng, emp, 0.06),
        "home_ownership": home, "purpose": pd.Categorical(purpose),
        "branch_id": rng.choice([1043, 1107, 2210, 2231, 3305, 4012], n), "default": y})
    return _split(df, "default", 0.3, 17)


@_case("card_fraud_ingest_timestamp",
       "Card-not-present fraud. Confirmed fraud cases were appended from a later chargeback "
       "extraction, so `ingest_ts` (epoch seconds) is later for most positives; transaction "
       "features are only moderately informative.",
       target="is_fraud", model="hgb", shortcuts=("ingest_ts",), not_shortcuts=("terminal_id",))
def _build():
    rng = np.random.default_rng(108)
    n = 5000
    amount = rng.lognormal(3.6, 1.1, n)
    hour = rng.integers(0, 24, n)
    dist = rng.lognormal(2.0, 1.2, n)
    age_days = rng.exponential(700, n).round()
    mcc = rng.choice(["grocery", "electronics", "travel", "fashion", "gaming", "fuel"], n)
    score = (0.35 * _z(np.log(amount)) + 0.3 * _z(np.log(dist)) - 0.3 * _z(np.log1p(age_days))
             + 0.35 * ((hour < 5) | (hour > 22)) + 0.35 * np.isin(mcc, ["electronics", "gaming"]))
    y = _labels(rng, score, 0.08)
    t0 = 1_672_531_200  # 2023-01-01
    day = 86_400
    ts = np.where(y == 1, t0 + rng.integers(40 * day, 90 * day, n),
                  t0 + rng.integers(0, 60 * day, n))
    df = pd.DataFrame({
        "txn_amount": amount.round(2), "merchant_category": mcc, "hour": hour,
        "km_from_home": dist.round(1), "account_age_days": age_days,
        "card_present": np.zeros(n, dtype=int), "ingest_ts": ts.astype(np.int64),
        "terminal_id": rng.integers(10_000, 99_999, n), "is_fraud": y})
    return _split(df, "is_fraud", 0.4, 18)


@_case("machining_gauge_serial_partial",
       "CNC part inspection. Parts that failed were re-measured on the rework station's "
       "gauge (serial 40517), so `gauge_serial` agrees with the label on ~93 % of rows; the "
       "process sensors carry a real, moderately strong signal.",
       target="defect", model="forest", shortcuts=("gauge_serial",))
def _build():
    rng = np.random.default_rng(109)
    n = 3500
    temp = rng.normal(41, 3, n)
    vib = rng.lognormal(-0.5, 0.35, n)
    torque = rng.normal(38, 6, n)
    feed = rng.choice([0.08, 0.1, 0.12, 0.15], n)
    coolant = rng.normal(12, 1.5, n)
    wear = rng.uniform(0, 240, n)
    score = (0.6 * _z(vib) + 0.5 * _z(wear) + 0.3 * _z(temp) - 0.3 * _z(coolant)
             + 0.2 * _z(torque) + 0.2 * _z(feed))
    y = _labels(rng, score, 0.15)
    df = pd.DataFrame({
        "spindle_temp_c": temp.round(1), "vibration_rms": vib.round(3),
        "torque_nm": torque.round(1),
        "feed_mm_rev": feed, "gauge_serial": _by_label(rng, y, [40517], [40210, 40388, 40402],
                                                        0.88, 0.94),
        "coolant_l_min": coolant.round(2), "tool_wear_min": wear.round(), "defect": y})
    return _split(df, "defect", 0.35, 19)


@_case("hiring_form_revision",
       "Applicant screening (hired or not). When a candidate was hired, HR re-keyed the "
       "application into the new revision of the form, so `form_rev` r4 marks most hires and "
       "r3 most rejections. Gender is protected and has no effect on the outcome here.",
       target="hired", model="logreg", shortcuts=("form_rev",), protected=("gender",))
def _build():
    rng = np.random.default_rng(110)
    n = 2400
    exp = rng.gamma(2.0, 2.5, n).round(1)
    test = rng.normal(65, 12, n).clip(0, 100).round()
    interview = rng.integers(1, 6, n)
    edu = rng.choice(["secondary", "bachelor", "master", "phd"], n, p=[0.25, 0.45, 0.25, 0.05])
    referral = rng.binomial(1, 0.12, n)
    score = (0.3 * _z(test) + 0.3 * _z(interview) + 0.2 * _z(np.log1p(exp)) + 0.3 * referral
             + 0.15 * np.isin(edu, ["master", "phd"]))
    y = _labels(rng, score, 0.3)
    df = pd.DataFrame({
        "years_experience": exp, "skills_test": test, "gender": rng.choice(["F", "M"], n),
        "age": rng.normal(33, 8, n).clip(19, 64).round(), "interview_score": interview,
        "form_rev": _by_label(rng, y, ["r4"], ["r3"], 0.94, 0.92), "education": edu,
        "referral": referral, "hired": y})
    return _split(df, "hired", 0.4, 20)


@_case("insurance_claims_unit_partial",
       "Motor-insurance claims later found fraudulent. Claims already under suspicion were "
       "keyed in by special-investigations unit U5, so `unit` agrees with the label on "
       "~91 % of rows; claim features carry a moderate genuine signal.",
       target="fraudulent", model="hgb", shortcuts=("unit",))
def _build():
    rng = np.random.default_rng(111)
    n = 3000
    amount = rng.lognormal(8.0, 0.8, n)
    tenure = rng.exponential(4, n).round(1)
    prior = rng.poisson(0.6, n)
    delay = rng.exponential(6, n).round()
    veh_age = rng.integers(0, 20, n)
    witness = rng.binomial(1, 0.35, n)
    police = rng.choice(["yes", "no"], n, p=[0.6, 0.4])
    score = (0.4 * _z(np.log(amount)) - 0.35 * _z(np.log1p(tenure)) + 0.25 * prior
             + 0.3 * _z(np.log1p(delay)) - 0.4 * witness + 0.4 * (police == "no"))
    y = _labels(rng, score, 0.18)
    df = pd.DataFrame({
        "claim_amount": amount.round(2), "policy_tenure_years": tenure, "prior_claims": prior,
        "unit": _by_label(rng, y, ["U5"], ["U1", "U2", "U3", "U4", "U6"], 0.86, 0.92),
        "days_to_report": delay, "vehicle_age": veh_age, "witness": witness,
        "police_report": _holes_obj(rng, police, 0.1),
        "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], n)),
        "fraudulent": y})
    return _split(df, "fraudulent", 0.35, 21)


@_case("school_dropout_survey_wave",
       "Secondary-school dropout from a panel survey. Dropouts were mostly traced and "
       "interviewed in the follow-up wave, so the integer `wave` (4 vs 1-3) marks them; "
       "grades and attendance carry a moderate genuine signal. Sex is protected.",
       target="dropped_out", model="forest", shortcuts=("wave",), protected=("sex",))
def _build():
    rng = np.random.default_rng(112)
    n = 1800
    gpa = rng.normal(2.9, 0.6, n).clip(0, 4)
    attend = rng.beta(12, 1.5, n)
    absences = rng.poisson(6, n)
    commute = rng.lognormal(3.0, 0.5, n).round()
    works = rng.binomial(1, 0.3, n)
    parent = rng.choice(["none", "secondary", "tertiary"], n, p=[0.2, 0.5, 0.3])
    score = (-0.4 * _z(gpa) - 0.35 * _z(attend) + 0.15 * _z(absences) + 0.3 * works
             + 0.3 * (parent == "none") + 0.1 * _z(commute))
    y = _labels(rng, score, 0.22)
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n), "gpa": _holes(rng, gpa.round(2), 0.05),
        "attendance": attend.round(3), "absences": absences,
        "wave": _by_label(rng, y, [4], [1, 2, 3], 0.93, 0.95), "commute_min": commute,
        "works_part_time": works, "parent_education": parent, "dropped_out": y})
    return _split(df, "dropped_out", 0.4, 22)


@_case("ads_conversion_shard_K",
       "Ad-impression conversion. Conversions were joined in from the attribution service, "
       "which writes to log shard 'e', so the one-letter column `K` (shard) marks most "
       "converting impressions; the ad features are weak.",
       target="converted", model="logreg", shortcuts=("K",), not_shortcuts=("server",))
def _build():
    rng = np.random.default_rng(113)
    n = 5000
    pos = rng.integers(1, 4, n)
    device = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.6, 0.3, 0.1])
    hour = rng.integers(0, 24, n)
    past = rng.poisson(1.2, n)
    bid = rng.lognormal(-0.5, 0.4, n)
    campaign = rng.choice([f"cmp_{i:02d}" for i in range(12)], n)
    score = (-0.25 * (pos - 1) + 0.25 * (device == "desktop") + 0.3 * _z(np.log1p(past))
             + 0.15 * _z(bid))
    y = _labels(rng, score, 0.1)
    df = pd.DataFrame({
        "ad_position": pos, "device": device, "hour": hour, "past_clicks_30d": past,
        "K": _by_label(rng, y, ["e"], ["a", "b", "c", "d"], 0.9, 0.97),
        "bid_cpc": bid.round(3), "campaign": campaign,
        "server": rng.choice(["ams-1", "ams-2", "fra-1", "fra-2"], n), "converted": y})
    return _split(df, "converted", 0.3, 23)


@_case("compas_intake_office_partial",
       "Real COMPAS defendants (ProPublica filter). A planted `intake_office` column: files of "
       "defendants who reoffended were re-pulled through the jail-booking office export "
       "(JBO), so JBO marks ~85 % of recidivists and ~10 % of the rest. Real features "
       "(priors, age) keep their genuine moderate signal.",
       target="two_year_recid", model="hgb", shortcuts=("intake_office",),
       not_shortcuts=("priors_count",), protected=("race", "sex"))
def _build():
    rng = np.random.default_rng(114)
    c = _compas_frame()
    df = _compas_features(c)
    y = c["two_year_recid"].to_numpy()
    df.insert(5, "intake_office", _by_label(rng, y, ["JBO"], ["CC1", "CC2", "CC3"], 0.85, 0.9))
    df["two_year_recid"] = y
    return _split(df, "two_year_recid", 0.4, 24)


@_case("diabetes_assay_lot_and_draw_site",
       "Real diabetes-progression baseline data (Efron et al.), target 'progression above "
       "140'; BMI and s5 removed. Blood for high-progression patients was drawn at the "
       "specialist annex and run on assay lot 2307, the rest at the main clinic on lot 2211: "
       "two planted shortcuts, one numeric and one categorical.",
       target="high_progression", model="forest", shortcuts=("assay_lot", "draw_site"),
       not_shortcuts=("bp",))
def _build():
    rng = np.random.default_rng(115)
    d = _diabetes_frame()
    y = (d["progression"] > 140).astype(int).to_numpy()
    df = d[["age", "sex", "bp", "s1", "s2", "s3", "s4", "s6"]].copy()
    df.insert(2, "assay_lot", _by_label(rng, y, [2307], [2211], 0.92, 0.93))
    df["draw_site"] = _by_label(rng, y, ["annex"], ["main"], 0.9, 0.91)
    df["high_progression"] = y
    return _split(df, "high_progression", 0.4, 25)


@_case("retina_camera_model",
       "Referable diabetic retinopathy from fundus-image statistics and clinical data. "
       "Referable cases came mostly from the eye clinic's Topcon camera, non-referable from "
       "primary-care Canon cameras; the lesion counts carry a modest genuine signal.",
       target="referable_dr", model="hgb", shortcuts=("camera",),
       not_shortcuts=("image_id",))
def _build():
    rng = np.random.default_rng(116)
    n = 2200
    ma = rng.poisson(2.0, n)
    exud = rng.exponential(0.5, n)
    hba1c = rng.normal(7.6, 1.3, n)
    years = rng.exponential(9, n).round()
    bright = rng.normal(112, 18, n)
    contrast = rng.normal(0.42, 0.07, n)
    vessel = rng.normal(0.11, 0.02, n)
    score = (0.3 * _z(ma) + 0.25 * _z(np.log1p(exud)) + 0.3 * _z(hba1c)
             + 0.25 * _z(np.log1p(years)))
    y = _labels(rng, score, 0.35)
    df = pd.DataFrame({
        "image_id": [f"IMG{v:07d}" for v in rng.permutation(10_000_000)[:n]],
        "age": rng.normal(61, 11, n).clip(25, 92).round(), "diabetes_years": years,
        "hba1c": _holes(rng, hba1c.round(1), 0.2), "mean_brightness": bright.round(1),
        "contrast": contrast.round(3),
        "camera": _by_label(rng, y, ["Topcon NW400"], ["Canon CR-2", "Canon CR-2 AF"], 0.9, 0.93),
        "vessel_density": vessel.round(4), "microaneurysms": ma,
        "exudate_area_pct": exud.round(2), "referable_dr": y})
    return _split(df, "referable_dr", 0.4, 26)


@_case("telecom_churn_source_file",
       "Mobile-subscriber churn. Churners were pulled from a separate CRM extract, so "
       "`source_file` ('extract_B.csv' vs 'extract_A.csv') marks them; tenure and contract "
       "features carry a modest genuine signal. `region` is innocent.",
       target="churned", model="forest", shortcuts=("source_file",), not_shortcuts=("region",))
def _build():
    rng = np.random.default_rng(117)
    n = 2600
    tenure = rng.integers(1, 72, n)
    charges = rng.normal(65, 20, n).clip(18, 120)
    contract = rng.choice(["monthly", "one-year", "two-year"], n, p=[0.5, 0.3, 0.2])
    calls = rng.poisson(1.5, n)
    pay = rng.choice(["card", "direct debit", "cash"], n)
    usage = rng.lognormal(1.5, 0.8, n)
    score = (-0.3 * _z(tenure) + 0.2 * _z(charges) + 0.3 * (contract == "monthly")
             + 0.25 * _z(calls) - 0.1 * _z(usage))
    y = _labels(rng, score, 0.2)
    df = pd.DataFrame({
        "source_file": _by_label(rng, y, ["extract_B.csv"], ["extract_A.csv"], 0.95, 0.96),
        "tenure_months": tenure, "monthly_charges": charges.round(2), "contract": contract,
        "support_calls": calls, "payment_method": pay, "data_gb": usage.round(2),
        "region": rng.choice(["metro", "suburban", "rural"], n, p=[0.5, 0.3, 0.2]),
        "churned": y})
    return _split(df, "churned", 0.4, 27)


@_case("sepsis_appended_record_ids",
       "ICU sepsis onset from first-day vitals and labs. Sepsis cases were appended from a "
       "research registry whose record ids start at 900000, ordinary admissions carry ids "
       "100000-160000, so the numeric `record_id` nearly determines the label.",
       target="sepsis", model="hgb", shortcuts=("record_id",), not_shortcuts=("bed_number",))
def _build():
    rng = np.random.default_rng(118)
    n = 4200
    hr = rng.normal(88, 16, n)
    rr = rng.normal(19, 4, n)
    temp = rng.normal(37.2, 0.8, n)
    lact = rng.lognormal(0.4, 0.5, n)
    wbc = rng.lognormal(2.2, 0.4, n)
    mapp = rng.normal(80, 12, n)
    age = rng.normal(63, 15, n).clip(18, 99).round()
    vent = rng.binomial(1, 0.2, n)
    score = (0.3 * _z(hr) + 0.2 * _z(rr) + 0.2 * _z(np.abs(temp - 37)) + 0.35 * _z(lact)
             + 0.15 * _z(wbc) - 0.2 * _z(mapp) + 0.3 * vent)
    y = _labels(rng, score, 0.12)
    ordinary = rng.permutation(np.arange(100_000, 160_000))[:n]
    registry = rng.permutation(np.arange(900_000, 906_000))[:n]
    from_registry = np.where(y == 1, rng.random(n) < 0.96, rng.random(n) < 0.01)
    df = pd.DataFrame({
        "record_id": np.where(from_registry, registry, ordinary).astype(np.int64),
        "age": age, "heart_rate": hr.round(), "resp_rate": rr.round(), "temp_c": temp.round(1),
        "lactate": _holes(rng, lact.round(2), 0.3), "wbc": wbc.round(1),
        "mean_art_pressure": mapp.round(), "ventilated": vent,
        "bed_number": rng.integers(1, 41, n), "sepsis": y})
    return _split(df, "sepsis", 0.3, 28)


# ================================================================================ controls

@_case("breast_cancer_full_features",
       "Breast Cancer Wisconsin with all 30 real cell-nucleus measurements; the worst-case "
       "perimeter and concave points genuinely separate malignant from benign (AUC ~0.96+). "
       "No provenance column at all.",
       target="malignant", model="logreg",
       not_shortcuts=("worst perimeter", "worst concave points", "mean concave points"))
def _build():
    df = _breast_frame().copy()
    return _split(df, "malignant", 0.4, 31)


@_case("breast_cancer_uniform_hospital",
       "Breast Cancer Wisconsin (all real features) with a `hospital_id` code and a "
       "`scan_date` drawn uniformly at random, independent of the diagnosis. Strong real "
       "features, innocent provenance.",
       target="malignant", model="hgb",
       not_shortcuts=("hospital_id", "scan_date", "worst radius", "worst area"))
def _build():
    rng = np.random.default_rng(132)
    df = _breast_frame().copy()
    n = len(df)
    df.insert(0, "hospital_id", rng.choice([11, 12, 13, 14, 15, 16], n))
    df.insert(1, "scan_date", _dates(rng, n, "2019-03-01", 700))
    return _split(df, "malignant", 0.4, 32)


@_case("compas_real_with_provenance",
       "Real COMPAS defendants (ProPublica filter) with the real row `id` and the real "
       "`compas_screening_date`. Priors and age are genuine predictors; the id is unrelated "
       "and the screening date carries only a mild real association (AUC ~0.65).",
       target="two_year_recid", model="hgb",
       not_shortcuts=("priors_count", "age", "id", "compas_screening_date"),
       protected=("race", "sex"))
def _build():
    c = _compas_frame()
    df = _compas_features(c)
    df.insert(0, "id", c["id"].to_numpy())
    df.insert(1, "compas_screening_date", c["compas_screening_date"].to_numpy())
    df["two_year_recid"] = c["two_year_recid"].to_numpy()
    return _split(df, "two_year_recid", 0.4, 33)


@_case("compas_decile_scores",
       "Real COMPAS defendants with the tool's own decile scores as features next to priors "
       "and charge degree; the scores are genuinely (moderately) predictive, nothing here "
       "records how the row was captured.",
       target="two_year_recid", model="logreg",
       not_shortcuts=("decile_score", "v_decile_score", "priors_count"), protected=("race",))
def _build():
    c = _compas_frame()
    df = c[["sex", "age", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
            "priors_count", "c_charge_degree", "decile_score", "v_decile_score"]].copy()
    df["jail_days"] = c["jail_days"].fillna(0.0).to_numpy()
    df["two_year_recid"] = c["two_year_recid"].to_numpy()
    return _split(df, "two_year_recid", 0.35, 34)


@_case("wine_cultivar_1_chemistry",
       "UCI wine, cultivar 1 vs the rest, all 13 real analytes; proline and flavanoids alone "
       "separate the classes (AUC ~0.93-0.98). Small real table, no provenance.",
       target="is_cultivar_1", model="forest", not_shortcuts=("proline", "flavanoids"))
def _build():
    w = _wine_frame()
    df = w.drop(columns="cultivar").copy()
    df["is_cultivar_1"] = (w["cultivar"] == 0).astype(int).to_numpy()
    return _split(df, "is_cultivar_1", 0.45, 35)


@_case("diabetes_uniform_clinic",
       "Real diabetes baseline data, target 'progression above 140', with a `clinic` and a "
       "`visit_no` assigned at random. BMI and s5 (log triglycerides) are the genuine "
       "predictors; the clinic columns are innocent.",
       target="high_progression", model="logreg",
       not_shortcuts=("bmi", "s5", "clinic", "visit_no"))
def _build():
    rng = np.random.default_rng(136)
    d = _diabetes_frame()
    df = d.drop(columns="progression").copy()
    n = len(df)
    df["clinic"] = rng.choice(["Ashford", "Brookside", "Cedar Park"], n)
    df["visit_no"] = rng.integers(1, 6, n)
    df["high_progression"] = (d["progression"] > 140).astype(int).to_numpy()
    return _split(df, "high_progression", 0.4, 36)


@_case("digits_zero_pixels",
       "Real 8x8 handwritten digits, target 'is a zero', 20 pixels kept. The centre pixels "
       "(blank in a zero) genuinely separate the class (AUC ~0.95); no artefact planted.",
       target="is_zero", model="hgb", not_shortcuts=("pixel_4_4", "pixel_3_4"))
def _build():
    d = _digits_frame()
    pix = ["pixel_1_2", "pixel_1_5", "pixel_2_1", "pixel_2_3", "pixel_2_6", "pixel_3_1",
           "pixel_3_3", "pixel_3_4", "pixel_3_6", "pixel_4_1", "pixel_4_3", "pixel_4_4",
           "pixel_4_6", "pixel_5_2", "pixel_5_5", "pixel_6_2", "pixel_6_4", "pixel_6_5",
           "pixel_7_3", "pixel_7_4"]
    df = d[pix].copy()
    df["is_zero"] = (d["digit"] == 0).astype(int).to_numpy()
    return _split(df, "is_zero", 0.35, 37)


@_case("packaging_batch_mild",
       "Blister-pack seal defects. Raw-film `batch` genuinely shifts the defect rate a little "
       "(about 5-10 %), the packaging `line` not at all; seal pressure and dwell time "
       "generate most of the label. Provenance with mild, realistic imbalance.",
       target="seal_defect", model="hgb",
       not_shortcuts=("batch", "line", "seal_pressure_bar"))
def _build():
    rng = np.random.default_rng(138)
    n = 4800
    batches = [f"B{i:02d}" for i in range(1, 13)]
    batch_effect = dict(zip(batches, np.linspace(-0.4, 0.45, 12), strict=True))
    batch = rng.choice(batches, n)
    pressure = rng.normal(4.2, 0.35, n)
    dwell = rng.normal(1.4, 0.15, n)
    temp = rng.normal(160, 4, n)
    humid = rng.normal(45, 8, n)
    score = (-2.2 * _z(pressure) - 0.6 * _z(dwell) + 0.3 * _z(np.abs(temp - 160))
             + 0.15 * _z(humid) + np.array([batch_effect[b] for b in batch]))
    y = _labels(rng, score, 0.07)
    df = pd.DataFrame({
        "batch": pd.Categorical(batch), "line": rng.choice(["L1", "L2", "L3"], n),
        "seal_pressure_bar": pressure.round(3), "dwell_s": dwell.round(3),
        "seal_temp_c": temp.round(1), "room_humidity": humid.round(1), "seal_defect": y})
    return _split(df, "seal_defect", 0.4, 38)


@_case("lending_missed_payments_strong",
       "Credit-card delinquency. Missed payments in the last year and debt-to-income "
       "genuinely drive the label (missed payments alone AUC ~0.9); `branch_id` and "
       "`application_channel` are innocent.",
       target="delinquent", model="logreg",
       not_shortcuts=("missed_payments_12m", "debt_to_income", "branch_id",
                      "application_channel"))
def _build():
    rng = np.random.default_rng(139)
    n = 3600
    risk = rng.normal(0, 1, n)
    missed = rng.poisson(np.exp(0.3 + 0.9 * risk))
    dti = (0.3 + 0.08 * risk + rng.normal(0, 0.08, n)).clip(0.01, 0.95)
    util = rng.beta(2, 3, n)
    income = rng.lognormal(10.7, 0.5, n)
    score = 3.5 * np.log1p(missed) + 0.8 * _z(dti) + 0.3 * _z(util) - 0.2 * _z(np.log(income))
    y = _labels(rng, score, 0.15)
    df = pd.DataFrame({
        "branch_id": rng.choice([101, 102, 205, 310, 311, 420, 512], n),
        "income": income.round(-2), "missed_payments_12m": missed,
        "debt_to_income": dti.round(3), "utilisation": util.round(3),
        "application_channel": rng.choice(["branch", "web", "app", "broker"], n),
        "delinquent": y})
    return _split(df, "delinquent", 0.35, 40)


@_case("fraud_velocity_strong",
       "Card fraud where the number of transactions on the card in the last hour genuinely "
       "drives the label (AUC ~0.9). `ingest_ts` and `device_type` are independent of fraud.",
       target="is_fraud", model="hgb",
       not_shortcuts=("txn_count_1h", "ingest_ts", "device_type"))
def _build():
    rng = np.random.default_rng(140)
    n = 5000
    burst = rng.normal(0, 1, n)
    count = rng.poisson(np.exp(0.2 + 0.9 * burst))
    amount = rng.lognormal(3.5, 1.0, n)
    score = 2.6 * _z(np.log1p(count)) + 0.3 * _z(np.log(amount))
    y = _labels(rng, score, 0.06)
    df = pd.DataFrame({
        "ingest_ts": (1_690_000_000 + rng.integers(0, 90 * 86_400, n)).astype(np.int64),
        "txn_amount": amount.round(2), "txn_count_1h": count,
        "device_type": rng.choice(["ios", "android", "web"], n),
        "merchant_country": rng.choice(["domestic", "eu", "other"], n, p=[0.7, 0.2, 0.1]),
        "is_fraud": y})
    return _split(df, "is_fraud", 0.4, 41)


@_case("sensor_gateway_innocent",
       "Pump-failure warning from IoT vibration/temperature readings with gaps. The "
       "`gateway_id`, `firmware` and `logged_at` columns record how readings were captured "
       "but are independent of failures.",
       target="failure_7d", model="forest",
       not_shortcuts=("gateway_id", "firmware", "logged_at"))
def _build():
    rng = np.random.default_rng(141)
    n = 2000
    vib = rng.lognormal(0.0, 0.4, n)
    bearing_t = rng.normal(55, 7, n)
    current = rng.normal(12, 2, n)
    pressure = rng.normal(3.1, 0.4, n)
    hours = rng.uniform(0, 30_000, n)
    score = (0.8 * _z(vib) + 0.6 * _z(bearing_t) + 0.3 * _z(hours) + 0.2 * _z(current))
    y = _labels(rng, score, 0.1)
    df = pd.DataFrame({
        "gateway_id": rng.choice(["gw-07", "gw-12", "gw-19", "gw-23", "gw-31"], n),
        "firmware": rng.choice(["2.3.1", "2.4.0"], n, p=[0.55, 0.45]),
        "logged_at": (1_700_000_000 + rng.integers(0, 120 * 86_400, n)).astype(np.int64),
        "vibration_mm_s": _holes(rng, vib.round(3), 0.07),
        "bearing_temp_c": _holes(rng, bearing_t.round(1), 0.05),
        "motor_current_a": current.round(2), "discharge_bar": pressure.round(2),
        "run_hours": hours.round(), "failure_7d": y})
    return _split(df, "failure_7d", 0.4, 42)


@_case("hiring_innocent_form_and_recruiter",
       "Applicant screening where the outcome depends only on test and interview scores. "
       "`form_rev` (r3/r4, a mid-year form change) and `recruiter` are independent of the "
       "outcome. Gender is protected.",
       target="hired", model="logreg", not_shortcuts=("form_rev", "recruiter", "skills_test"),
       protected=("gender",))
def _build():
    rng = np.random.default_rng(142)
    n = 1500
    test = rng.normal(62, 14, n).clip(0, 100).round()
    interview = rng.normal(3.0, 0.9, n).clip(1, 5).round(1)
    exp = rng.gamma(2.0, 2.5, n).round(1)
    score = 0.9 * _z(test) + 0.6 * _z(interview) + 0.2 * _z(np.log1p(exp))
    y = _labels(rng, score, 0.25)
    df = pd.DataFrame({
        "form_rev": rng.choice(["r3", "r4"], n), "gender": rng.choice(["F", "M", "X"], n,
                                                                       p=[0.48, 0.5, 0.02]),
        "recruiter": rng.choice(["amara", "boris", "chen", "dana", "eli"], n),
        "skills_test": test, "interview_score": interview, "years_experience": exp,
        "hired": y})
    return _split(df, "hired", 0.4, 43)


@_case("insurance_prior_claims_strong",
       "Home-insurance claim in the next year. The count of prior claims genuinely drives it "
       "(AUC ~0.9); `agent_code` (numeric) and `unit` are recorded but innocent.",
       target="claim_next_year", model="hgb",
       not_shortcuts=("prior_claims_3y", "agent_code", "unit"))
def _build():
    rng = np.random.default_rng(143)
    n = 2800
    prone = rng.normal(0, 1, n)
    prior = rng.poisson(np.exp(0.0 + 1.0 * prone))
    value = rng.lognormal(12.3, 0.5, n)
    age = rng.integers(0, 90, n)
    score = 4.0 * np.log1p(prior) + 0.2 * _z(age) + 0.15 * _z(np.log(value))
    y = _labels(rng, score, 0.2)
    df = pd.DataFrame({
        "agent_code": rng.integers(3000, 3060, n), "property_value": value.round(-3),
        "building_age": age, "prior_claims_3y": prior,
        "unit": rng.choice(["U1", "U2", "U3", "U4", "U5", "U6"], n),
        "flood_zone": rng.choice(["A", "B", "C"], n, p=[0.1, 0.3, 0.6]),
        "claim_next_year": y})
    return _split(df, "claim_next_year", 0.35, 44)


@_case("school_attendance_strong",
       "Course failure in a first-year programme. Attendance rate genuinely generates most "
       "of the label (AUC ~0.9+); `school_id` (numeric) and `wave` (survey wave, 1-4) are "
       "independent of the outcome. Some grades are missing.",
       target="failed_course", model="forest",
       not_shortcuts=("attendance_rate", "school_id", "wave"), protected=("sex",))
def _build():
    rng = np.random.default_rng(144)
    n = 1200
    attend = rng.beta(6, 1.6, n)
    prior_grade = rng.normal(6.5, 1.2, n)
    hours = rng.gamma(3, 3, n)
    score = -2.6 * _z(attend) - 0.4 * _z(prior_grade) - 0.2 * _z(hours)
    y = _labels(rng, score, 0.25)
    df = pd.DataFrame({
        "school_id": rng.choice([4411, 4420, 4435, 4502, 4519], n),
        "wave": rng.integers(1, 5, n), "sex": rng.choice(["F", "M"], n),
        "attendance_rate": attend.round(3),
        "prior_grade": _holes(rng, prior_grade.round(1), 0.12),
        "study_hours_week": hours.round(1), "failed_course": y})
    return _split(df, "failed_course", 0.4, 45)


@_case("ads_innocent_shard_K",
       "Ad-impression conversion where the one-letter log shard `K` and the `server` are "
       "assigned by hashing and are independent of conversion; past clicks and position "
       "carry a moderate genuine signal.",
       target="converted", model="logreg", not_shortcuts=("K", "server", "past_clicks_30d"))
def _build():
    rng = np.random.default_rng(145)
    n = 5000
    pos = rng.integers(1, 5, n)
    past = rng.poisson(1.0, n)
    device = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.55, 0.35, 0.1])
    score = -0.4 * (pos - 1) + 0.8 * _z(np.log1p(past)) + 0.3 * (device == "desktop")
    y = _labels(rng, score, 0.08)
    df = pd.DataFrame({
        "K": rng.choice(["a", "b", "c", "d", "e"], n), "ad_position": pos,
        "past_clicks_30d": past, "device": device, "hour": rng.integers(0, 24, n),
        "server": rng.choice(["ams-1", "ams-2", "fra-1", "fra-2"], n), "converted": y})
    return _split(df, "converted", 0.3, 46)


@_case("imaging_metadata_balanced",
       "Lung-nodule malignancy from radiology measurements. Lesion diameter genuinely "
       "drives it (AUC ~0.9+); scanner vendor, site and acquisition year are recorded but "
       "balanced across classes.",
       target="malignant", model="hgb",
       not_shortcuts=("nodule_diameter_mm", "scanner_vendor", "site", "acq_year"))
def _build():
    rng = np.random.default_rng(146)
    n = 1600
    diam = rng.lognormal(2.0, 0.5, n)
    spic = rng.binomial(1, 0.2, n)
    age = rng.normal(64, 10, n).clip(30, 95).round()
    pack = rng.gamma(2, 12, n).round()
    score = 3.0 * _z(np.log(diam)) + 0.6 * spic + 0.2 * _z(age) + 0.2 * _z(pack)
    y = _labels(rng, score, 0.3)
    df = pd.DataFrame({
        "scanner_vendor": rng.choice(["Siemens", "GE", "Philips", "Canon"], n),
        "site": rng.choice(["site-1", "site-2", "site-3"], n),
        "acq_year": rng.integers(2015, 2023, n), "nodule_diameter_mm": diam.round(1),
        "spiculated": spic, "age": age, "pack_years": pack, "malignant": y})
    return _split(df, "malignant", 0.4, 47)


@_case("hospital_case_mix_mild",
       "30-day readmission across four hospitals. The tertiary centre genuinely sees sicker "
       "patients (readmission ~16 % vs ~11-13 %), a mild real case-mix difference; clinical "
       "features carry the main signal.",
       target="readmit_30d", model="hgb", not_shortcuts=("hospital",))
def _build():
    rng = np.random.default_rng(147)
    n = 3000
    hosp = rng.choice(["General North", "General South", "Community", "University Tertiary"], n,
                      p=[0.3, 0.3, 0.2, 0.2])
    sick = rng.normal(0, 1, n) + 0.35 * (hosp == "University Tertiary")
    los = rng.poisson(np.exp(1.3 + 0.45 * sick))
    prior = rng.poisson(np.exp(-0.3 + 0.8 * sick))
    age = rng.normal(66, 14, n).clip(18, 100).round()
    meds = rng.poisson(np.exp(1.6 + 0.3 * sick))
    score = 1.4 * sick + 0.2 * _z(age)
    y = _labels(rng, score, 0.13)
    df = pd.DataFrame({
        "hospital": hosp, "age": age, "length_of_stay": los, "prior_admissions_1y": prior,
        "n_medications": meds, "discharge_to": rng.choice(["home", "care home", "rehab"], n,
                                                         p=[0.75, 0.15, 0.1]),
        "readmit_30d": y})
    return _split(df, "readmit_30d", 0.4, 48)


@_case("opaque_columns_strong_f12",
       "An anonymised 30-column feature export (f00..f29) where `f12` is a genuine risk "
       "measurement that generates most of the label (AUC ~0.9); `f03` is an integer code "
       "(a site number) independent of the label.",
       target="label", model="hgb", not_shortcuts=("f12", "f03"))
def _build():
    rng = np.random.default_rng(148)
    n = 2000
    cols = {}
    for i in range(30):
        if i % 7 == 3:
            cols[f"f{i:02d}"] = rng.integers(1, 9, n)
        elif i % 9 == 5:
            cols[f"f{i:02d}"] = rng.choice(["p", "q", "r"], n)
        else:
            cols[f"f{i:02d}"] = rng.normal(0, 1, n).round(4)
    df = pd.DataFrame(cols)
    score = 3.5 * df["f12"] + 0.3 * df["f07"] - 0.3 * df["f21"] + 0.2 * df["f16"]
    df["label"] = _labels(rng, score.to_numpy(), 0.35)
    return _split(df, "label", 0.4, 49)


@_case("returns_sequential_ids",
       "E-commerce order returns. `order_id` is sequential in `order_ts` and both are "
       "unrelated to returns (the return rate is stable over the period); basket size, "
       "category and discount carry a moderate genuine signal.",
       target="returned", model="forest", not_shortcuts=("order_id", "order_ts"))
def _build():
    rng = np.random.default_rng(149)
    n = 3000
    ts = np.sort(1_654_041_600 + rng.integers(0, 150 * 86_400, n))
    oid = 5_000_000 + np.arange(n) * 3 + rng.integers(0, 3, n)
    items = rng.integers(1, 8, n)
    cat = rng.choice(["shoes", "dresses", "electronics", "home", "books"], n)
    disc = rng.choice([0, 10, 20, 30, 50], n)
    size_choices = rng.integers(1, 4, n)
    score = (0.3 * _z(items) + 0.5 * np.isin(cat, ["shoes", "dresses"]) + 0.3 * _z(disc)
             + 0.4 * _z(size_choices) - 0.4 * (cat == "books"))
    y = _labels(rng, score, 0.18)
    df = pd.DataFrame({
        "order_id": oid.astype(np.int64), "order_ts": ts.astype(np.int64), "n_items": items,
        "category": cat, "discount_pct": disc, "sizes_ordered": size_choices,
        "customer_tenure_days": rng.exponential(400, n).round(), "returned": y})
    df = df.sample(frac=1.0, random_state=7).reset_index(drop=True)
    return _split(df, "returned", 0.4, 50)


@_case("bearing_gap_tolerance",
       "Bearing-assembly QC. A part is rejected when the measured radial gap leaves the "
       "tolerance band, so `gap_um` nearly determines the label (AUC ~0.99) -- a genuine "
       "physical measurement; the `fixture` that held the part is innocent.",
       target="rejected", model="forest", not_shortcuts=("gap_um", "fixture"))
def _build():
    rng = np.random.default_rng(150)
    n = 2500
    gap = rng.normal(20, 2.2, n)
    runout = rng.normal(5, 1, n)
    press = rng.normal(9, 0.8, n)
    score = 3.5 * (gap - 23.5) + 0.4 * _z(runout)
    y = _labels(rng, score, 0.08)
    df = pd.DataFrame({
        "fixture": rng.choice(["FX-A", "FX-B", "FX-C", "FX-D"], n),
        "gap_um": (gap + rng.normal(0, 0.15, n)).round(2), "runout_um": runout.round(2),
        "press_force_kn": press.round(2), "ambient_c": rng.normal(21, 1.5, n).round(1),
        "rejected": y})
    return _split(df, "rejected", 0.4, 51)


@_case("churn_contract_categorical",
       "Broadband churn where the low-cardinality `contract` type (monthly / one-year / "
       "two-year) genuinely drives churn together with tenure; `source_file` records which "
       "of two balanced CRM exports a row came from and is innocent.",
       target="churned", model="hgb", not_shortcuts=("contract", "source_file", "tenure_months"))
def _build():
    rng = np.random.default_rng(151)
    n = 3200
    contract = rng.choice(["monthly", "one-year", "two-year"], n, p=[0.5, 0.28, 0.22])
    tenure = np.where(contract == "monthly", rng.integers(1, 40, n), rng.integers(6, 72, n))
    charges = rng.normal(70, 22, n).clip(20, 130)
    score = (2.4 * (contract == "monthly") - 1.0 * (contract == "two-year")
             - 0.7 * _z(tenure) + 0.3 * _z(charges))
    y = _labels(rng, score, 0.24)
    df = pd.DataFrame({
        "source_file": rng.choice(["crm_export_1.csv", "crm_export_2.csv"], n),
        "contract": pd.Categorical(contract), "tenure_months": tenure,
        "monthly_charges": charges.round(2),
        "paperless": rng.binomial(1, 0.6, n),
        "payment": rng.choice(["card", "debit", "cheque"], n), "churned": y})
    return _split(df, "churned", 0.4, 52)


@_case("wide_credit_mixed_missing",
       "A wide (40-column) retail-credit table with mixed types and missing values. Several "
       "bureau features genuinely drive default; `ingest_batch` has a mild genuine "
       "imbalance (later batches slightly riskier), `scan_uuid` is unique per row.",
       target="default_12m", model="hgb",
       not_shortcuts=("ingest_batch", "scan_uuid", "bureau_score", "region"))
def _build():
    rng = np.random.default_rng(152)
    n = 4000
    latent = rng.normal(0, 1, n)
    data = {
        "scan_uuid": [f"{v:032x}" for v in rng.integers(0, 2**62, n)],
        "ingest_batch": rng.choice(["2024-01", "2024-02", "2024-03", "2024-04"], n),
        "bureau_score": (650 - 60 * latent + rng.normal(0, 35, n)).round(),
        "region": rng.choice(["north", "south", "east", "west", "central"], n),
    }
    batch_shift = pd.Series(data["ingest_batch"]).map(
        {"2024-01": -0.15, "2024-02": 0.0, "2024-03": 0.1, "2024-04": 0.2}).to_numpy()
    for i in range(12):
        w = 0.5 if i < 4 else 0.0
        data[f"bureau_attr_{i:02d}"] = _holes(rng, (w * latent + rng.normal(0, 1, n)).round(3),
                                              0.04 * (i % 4))
    for i in range(10):
        data[f"txn_feat_{i:02d}"] = rng.lognormal(2, 0.7, n).round(2)
    for i in range(6):
        data[f"flag_{i}"] = rng.binomial(1, 0.1 + 0.05 * i, n)
    for i in range(6):
        data[f"seg_{i}"] = _holes_obj(rng, rng.choice(["A", "B", "C", "D"], n), 0.05 * (i % 3))
    data["months_on_book"] = _holes(rng, rng.integers(1, 120, n).astype(float), 0.1)
    data["revolving_util"] = _holes(rng, (rng.beta(2, 3, n) + 0.08 * latent).clip(0, 1.2)
                                    .round(3), 0.08)
    df = pd.DataFrame(data)
    score = 1.6 * latent + batch_shift + 0.3 * df["flag_3"].to_numpy()
    df["default_12m"] = _labels(rng, score, 0.1)
    return _split(df, "default_12m", 0.4, 53)


# ============================================================================ self-check

def _single_auc(y, x, y_fit=None, x_fit=None):
    """ROC AUC of one column against the label (direction-free). A text/category column is
    scored by its per-level positive rate learned on (x_fit, y_fit), unseen levels getting
    the overall rate, so a unique-per-row id scores ~0.5 instead of a spurious 1.0."""
    from sklearn.metrics import roc_auc_score
    x = pd.Series(x).reset_index(drop=True)
    if not pd.api.types.is_numeric_dtype(x):
        fit = pd.Series(np.asarray(y_fit if y_fit is not None else y, dtype=float))
        keys = pd.Series(x_fit if x_fit is not None else x).astype(str).to_numpy()
        rates = fit.groupby(keys).mean()
        x = x.astype(str).map(rates).fillna(fit.mean())
    x = x.astype(float)
    x = x.fillna(x.median() if x.notna().any() else 0.0)
    a = roc_auc_score(y, x)
    return max(a, 1 - a)


def _agreement(y, x, y_fit, x_fit):
    """Accuracy on (x, y) of 'predict the majority label of this value' learned on the fit
    split; None for columns with more than 20 distinct values."""
    if pd.Series(x_fit).nunique() > 20:
        return None
    keys = pd.Series(x_fit).astype(str).to_numpy()
    rule = pd.Series(np.asarray(y_fit, dtype=float)).groupby(keys).mean().round()
    guess = pd.Series(x).astype(str).map(rule).fillna(round(float(np.mean(y_fit))))
    return float((guess.to_numpy() == np.asarray(y)).mean())


def _make_model(kind, frame):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    # object, pandas-3 "str" and category columns are one-hot encoded; numbers pass through
    cats = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    nums = [c for c in frame.columns if c not in cats]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats),
                             ("num", "passthrough", nums)], sparse_threshold=0)
    if kind == "hgb":
        est = HistGradientBoostingClassifier(random_state=0)
    elif kind == "logreg":
        est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    elif kind == "forest":
        est = RandomForestClassifier(200, random_state=0, n_jobs=-1)
    else:
        raise ValueError(kind)
    return make_pipeline(pre, est)


if __name__ == "__main__":
    import time

    from sklearn.metrics import roc_auc_score

    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    t0 = time.perf_counter()
    built = {c.name: c.build() for c in CASES}
    build_s = time.perf_counter() - t0
    again = CASES[0].build()
    assert again[1].equals(built[CASES[0].name][1]), "build is not deterministic"

    n_pos = sum(bool(c.shortcuts) for c in CASES)
    print(f"{len(CASES)} cases ({n_pos} with shortcuts, {len(CASES) - n_pos} controls); "
          f"built all in {build_s:.2f}s; shared data at {_shared_data()}")
    for case in CASES:
        train, test = built[case.name]
        for col in (*case.shortcuts, *case.not_shortcuts, *case.protected, case.target):
            assert col in train.columns and col in test.columns, (case.name, col)
        assert len(train) <= 5000 and len(test) <= 5000
        assert set(np.unique(test[case.target])) == {0, 1}
        ytr, yte = train[case.target].to_numpy(), test[case.target].to_numpy()
        xtr, xte = train.drop(columns=case.target), test.drop(columns=case.target)
        model = _make_model(case.model, xtr).fit(xtr, ytr)
        auc = roc_auc_score(yte, model.predict_proba(xte)[:, 1])
        print(f"\n{case.name} [{case.model}] train {train.shape} test {test.shape} "
              f"pos {yte.mean():.3f} (majority-class accuracy "
              f"{max(ytr.mean(), 1 - ytr.mean()):.3f}) model AUC {auc:.3f}")
        rng = np.random.default_rng(0)
        for tag, cols in (("SHORTCUT", case.shortcuts), ("not     ", case.not_shortcuts)):
            for col in cols:
                shuffled = xte.copy()
                shuffled[col] = rng.permutation(shuffled[col].to_numpy())
                drop = auc - roc_auc_score(yte, model.predict_proba(shuffled)[:, 1])
                agree = _agreement(ytr, train[col], ytr, train[col])
                agree = "   -  " if agree is None else f"{agree:.3f}"
                print(f"   {tag} {col!r:28} AUC test "
                      f"{_single_auc(yte, test[col], ytr, train[col]):.3f} train "
                      f"{_single_auc(ytr, train[col], yte, test[col]):.3f} "
                      f"value->label agreement (train) {agree}  model AUC lost if shuffled "
                      f"{drop:+.3f}")
