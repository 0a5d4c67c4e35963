from kibitz.cli import app

app()
