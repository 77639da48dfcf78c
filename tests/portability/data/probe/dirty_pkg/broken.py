VALUE = {}["missing"]
