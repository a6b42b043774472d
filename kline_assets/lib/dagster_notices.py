"""Silence Dagster's beta/preview notices for APIs this project uses on purpose
(MultiPartitionMapping, observable_source_asset, partitioned asset checks); they would
otherwise print on every CLI call and step process."""

import warnings

from dagster import BetaWarning, PreviewWarning

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
