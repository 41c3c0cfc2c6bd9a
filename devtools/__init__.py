"""Developer tooling (local services, the run command). Never packaged into the Lambda bundle."""
