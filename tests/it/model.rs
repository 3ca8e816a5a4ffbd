fn y(){}
