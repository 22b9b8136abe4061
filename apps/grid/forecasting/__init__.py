"""Day-ahead forecasting engines (pure Python: numpy, pandas, statsmodels, pvlib)."""
