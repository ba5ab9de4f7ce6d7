"""Research on the venue's market data: ETL to Parquet, features, a backtester, direction models, inference."""
