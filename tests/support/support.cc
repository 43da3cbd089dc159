// Helpers shared by the tests; see the headers beside this file.
