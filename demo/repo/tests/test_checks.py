"""A few boring tests for the boring checks. Run with `python -m pytest`."""

from datetime import datetime, timezone

from leakcheck import Contract, check_batch

CONTRACT = Contract.from_dict(
    {
        "table": {"name": "sailings", "owner": "tova.brannock", "freshness_column": "departed_at",
                  "freshness_minutes": 60},
        "volume": {"min_rows": 1, "max_rows": 3},
        "columns": [
            {"name": "sailing_id", "type": "text"},
            {"name": "passengers", "type": "integer"},
            {"name": "departed_at", "type": "timestamp"},
        ],
    }
)
NOW = datetime(2024, 1, 12, 23, 0, tzinfo=timezone.utc)


def test_a_dry_batch_passes():
    rows = [{"sailing_id": "NRT-2130", "passengers": "118", "departed_at": "2024-01-12T22:30:00+00:00"}]
    assert check_batch(CONTRACT, rows, loaded_at=NOW).ok


def test_an_empty_promised_column_leaks():
    rows = [{"sailing_id": "", "passengers": "118", "departed_at": "2024-01-12T22:30:00+00:00"}]
    report = check_batch(CONTRACT, rows, loaded_at=NOW)
    assert not report.ok
    assert "'sailing_id' is empty" in report.render()


def test_stale_data_leaks_even_when_every_value_is_fine():
    rows = [{"sailing_id": "NRT-0710", "passengers": "40", "departed_at": "2024-01-12T07:10:00+00:00"}]
    report = check_batch(CONTRACT, rows, loaded_at=NOW)
    assert [finding.check for finding in report.leaks] == ["freshness"]


def test_a_new_column_is_mentioned_not_fatal():
    rows = [{"sailing_id": "NRT-2130", "passengers": "118", "departed_at": "2024-01-12T22:30:00+00:00",
             "vessel": "MV-SKARV II"}]
    report = check_batch(CONTRACT, rows, loaded_at=NOW)
    assert report.ok and "not in the contract yet" in report.render()
