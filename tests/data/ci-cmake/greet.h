char *greeting(const char *name);
int sum(const int *v, int n);
